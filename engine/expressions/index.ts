/** Expressions the engine evaluates itself (the rest is SQL for the store). */
export type { CompiledParts, Expr, ExprType } from './expr.ts';
export { compile, comparisonPrefix, constantValue, parsers, type Evaluator } from './evaluate.ts';
export { castFunction, functions, NeedsStore, outputText, posixRegExp } from './functions.ts';
export { dateTrunc, fixedInterval, formatTimestamp, isDateTruncUnit, zoneFreeUnits } from './timestamp.ts';

import { toPgText, type NonNullValue } from '../values/index.ts';
import { formatTimestamp as timestampText } from './timestamp.ts';

/** A value of a view's grouping key as text for the store: timestamps computed by the engine are microseconds. */
export function keyText(typeName: string, value: NonNullValue): string {
  if (typeof value === 'number' && (typeName === 'timestamptz' || typeName === 'timestamp')) return timestampText(value, typeName === 'timestamptz');
  return toPgText(typeName, value);
}
export { jsonObject, jsonString, jsonValue } from './json-output.ts';
