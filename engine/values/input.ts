/**
 * The engine's input functions: PostgreSQL text (from COPY, INSERT literals,
 * Kafka JSON) to typed JS values, with PostgreSQL's exact acceptance rules
 * and error messages. Types not listed here are left to the serving store.
 */
import { parseBool } from './boolean.ts';
import { bpcharInput, parseName, parseText, varcharInput } from './character.ts';
import { parseFloat4, parseFloat8 } from './float.ts';
import { parseInt2, parseInt4, parseInt8 } from './integer.ts';
import { numericInputFunction } from './numeric.ts';

/**
 * A non-null engine value: int2/int4/float4/float8 -> number (float4 holds
 * the exact float32), int8 -> bigint, bool -> boolean, numeric -> numeric_out
 * text, text/varchar/bpchar/name -> string.
 */
export type NonNullValue = number | bigint | boolean | string;
/** An engine value; null is SQL NULL. */
export type Value = NonNullValue | null;

export type InputFunction = (text: string) => NonNullValue;

/** varchar / bpchar typmods are the declared length + VARHDRSZ. */
const VARHDRSZ = 4;

/** pg_type.typname for every spelling accepted: typname and format_type's base names. */
const CANONICAL_TYPE_NAMES: Readonly<Record<string, string>> = {
  int2: 'int2',
  smallint: 'int2',
  int4: 'int4',
  integer: 'int4',
  int8: 'int8',
  bigint: 'int8',
  float4: 'float4',
  real: 'float4',
  float8: 'float8',
  'double precision': 'float8',
  numeric: 'numeric',
  bool: 'bool',
  boolean: 'bool',
  text: 'text',
  varchar: 'varchar',
  'character varying': 'varchar',
  bpchar: 'bpchar',
  character: 'bpchar',
  name: 'name',
};

/** The pg_type.typname for `typeName`, or undefined if the engine does not convert it itself. */
export function canonicalTypeName(typeName: string): string | undefined {
  return Object.hasOwn(CANONICAL_TYPE_NAMES, typeName) ? CANONICAL_TYPE_NAMES[typeName] : undefined;
}

/**
 * The input function for a column type. `typmod` is pg_attribute.atttypmod
 * (-1 for none). Undefined for types the caller must let PostgreSQL check.
 */
export function inputFunction(typeName: string, typmod: number): InputFunction | undefined {
  switch (canonicalTypeName(typeName)) {
    case 'int2':
      return parseInt2;
    case 'int4':
      return parseInt4;
    case 'int8':
      return parseInt8;
    case 'float4':
      return parseFloat4;
    case 'float8':
      return parseFloat8;
    case 'numeric':
      return numericInputFunction(typmod);
    case 'bool':
      return parseBool;
    case 'text':
      return parseText;
    case 'varchar':
      return typmod >= VARHDRSZ ? varcharInput(typmod - VARHDRSZ) : parseText;
    case 'bpchar':
      return typmod >= VARHDRSZ ? bpcharInput(typmod - VARHDRSZ) : parseText;
    case 'name':
      return parseName;
    default:
      return undefined;
  }
}
