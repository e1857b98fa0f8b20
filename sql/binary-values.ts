import { SqlError } from '../engine/errors.ts';
import type { StoreConnection } from '../engine/store.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Type OIDs whose binary form the engine reads itself; any other goes through PostgreSQL's receive function. */
const Oid = { bool: 16, int8: 20, int2: 21, int4: 23, text: 25, float4: 700, float8: 701, unknown: 0, varchar: 1043, bpchar: 1042, name: 19 } as const;
const textTypes: ReadonlySet<number> = new Set([Oid.text, Oid.varchar, Oid.bpchar, Oid.name, Oid.unknown]);
/** Values per decoding statement: one output column each, and a SELECT list holds at most 1,664. */
const perStatement = 1000;

/** Types whose binary form is their text (text, varchar, char, name; unknown is read as text). */
export function readsAsText(oid: number): boolean {
  return textTypes.has(oid);
}

/**
 * Values in their types' binary (send) format, as PostgreSQL text: integers,
 * floats and booleans read here; every other type (numeric, timestamps, uuid,
 * bytea, arrays, composites, enums, domains…) read by PostgreSQL itself with
 * the type's receive function and printed by its output function, a few
 * thousand values per round trip. Null stays null.
 */
export async function binaryTexts(conn: StoreConnection, values: readonly (Buffer | null)[], oids: readonly number[]): Promise<(string | null)[]> {
  const texts: (string | null)[] = new Array(values.length).fill(null);
  const viaStore: number[] = [];
  values.forEach((value, i) => {
    if (value === null) return;
    const text = readsAsText(oids[i]) ? utf8Text(value) : scalarFromBinary(value, oids[i]);
    if (text === undefined) viaStore.push(i);
    else texts[i] = text;
  });
  for (let from = 0; from < viaStore.length; from += perStatement) {
    const part = viaStore.slice(from, from + perStatement);
    const sql = `SELECT ${part.map((_, j) => `$${j + 1}::text`).join(', ')}`;
    const result = await conn.query(sql, part.map((i) => values[i]), part.map((i) => oids[i]));
    part.forEach((i, j) => (texts[i] = result.rows[0][j]));
  }
  return texts;
}

/** The text of a binary bool/integer/float, or undefined when PostgreSQL should read it. */
function scalarFromBinary(value: Buffer, oid: number): string | undefined {
  switch (oid) {
    case Oid.bool:
      return value.length === 1 ? (value[0] ? 't' : 'f') : undefined;
    case Oid.int8:
      return value.length === 8 ? value.readBigInt64BE(0).toString() : undefined;
    case Oid.int2:
      return value.length === 2 ? String(value.readInt16BE(0)) : undefined;
    case Oid.int4:
      return value.length === 4 ? String(value.readInt32BE(0)) : undefined;
    case Oid.float8:
      return value.length === 8 ? floatText(value.readDoubleBE(0)) : undefined;
    case Oid.float4:
      return value.length === 4 ? floatText(value.readFloatBE(0)) : undefined;
    default:
      return undefined;
  }
}

/** PostgreSQL's spellings of the special values; any finite double prints in shortest round-trip form. */
function floatText(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return Object.is(x, -0) ? '-0' : String(x);
}

/** UTF-8 text as sent by a client, or 22021 naming the first bad bytes (as PostgreSQL does): never repaired. */
export function utf8Text(value: Buffer): string {
  const bad = invalidUtf8(value);
  if (bad) throw new SqlError('22021', `invalid byte sequence for encoding "UTF8": ${bad}`);
  return utf8.decode(value);
}

/** The first byte sequence PostgreSQL refuses in UTF-8 text (NUL included), as it names it; '' when all is valid. */
function invalidUtf8(value: Buffer): string {
  for (let i = 0; i < value.length; ) {
    const lead = value[i];
    const length = lead < 0x80 ? 1 : (lead & 0xe0) === 0xc0 ? 2 : (lead & 0xf0) === 0xe0 ? 3 : (lead & 0xf8) === 0xf0 ? 4 : 0;
    const end = Math.min(value.length, i + Math.max(length, 1));
    if (lead === 0 || length === 0 || i + length > value.length || !decodes(value.subarray(i, end))) {
      return [...value.subarray(i, end)].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ');
    }
    i += length;
  }
  return '';
}

function decodes(bytes: Buffer): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

