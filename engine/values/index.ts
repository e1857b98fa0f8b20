/** The value layer: PostgreSQL text <-> engine values, with PostgreSQL's exact semantics. */
export {
  canonicalTypeName,
  inputFunction,
  type InputFunction,
  type NonNullValue,
  type Value,
} from './input.ts';
export { formatFloat, toPgText } from './output.ts';
export {
  addNumeric,
  applyTypmod,
  compareNumeric,
  decodeNumericTypmod,
  finiteNumeric,
  numericInputFunction,
  numericToString,
  numericTypmod,
  parseNumeric,
  pow10,
  NUMERIC_INFINITY,
  NUMERIC_NAN,
  NUMERIC_NEGATIVE_INFINITY,
  type Numeric,
  type NumericTypmod,
} from './numeric.ts';
export { parseInt2, parseInt4, parseInt8 } from './integer.ts';
export { parseFloat4, parseFloat8 } from './float.ts';
export { parseBool } from './boolean.ts';
export { bpcharInput, parseName, parseText, varcharInput } from './character.ts';
export { certainlyValidDateTime } from './datetime-check.ts';
