import { SqlError } from '../../engine/errors.ts';
import type { StoreConnection } from '../../engine/store.ts';

/** Type OIDs whose binary form the engine reads itself; any other goes through PostgreSQL's receive function. */
const Oid = { bool: 16, int8: 20, int2: 21, int4: 23, text: 25, float4: 700, float8: 701, unknown: 0, varchar: 1043, bpchar: 1042, name: 19 } as const;
const plainText: ReadonlySet<number> = new Set([Oid.text, Oid.varchar, Oid.bpchar, Oid.name, Oid.unknown]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Bound parameters of statements Sluice runs itself, as PostgreSQL text.
 * Text values must be valid UTF-8 (they are refused, never repaired). Binary
 * values of the common scalar types are read here; every other binary value
 * (numeric, timestamps, uuid, bytea, arrays, composites, enums, domains…) is
 * read by PostgreSQL itself with the type's receive function and printed by
 * its output function, in one round trip for the whole Bind.
 */
export async function parameterTexts(
  conn: StoreConnection,
  params: readonly (Buffer | null)[],
  formats: readonly number[],
  typeOids: readonly number[],
): Promise<(string | null)[]> {
  const texts: (string | null)[] = new Array(params.length).fill(null);
  const viaStore: number[] = [];
  params.forEach((value, i) => {
    if (value === null) return;
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
    const oid = typeOids[i] ?? Oid.unknown;
    if (format !== 1 || plainText.has(oid)) texts[i] = utf8Text(value);
    else {
      const text = scalarFromBinary(value, oid);
      if (text === undefined) viaStore.push(i);
      else texts[i] = text;
    }
  });
  if (viaStore.length) {
    const sql = `SELECT ${viaStore.map((_, j) => `$${j + 1}::text`).join(', ')}`;
    const result = await conn.query(sql, viaStore.map((i) => params[i]), viaStore.map((i) => typeOids[i]));
    viaStore.forEach((i, j) => (texts[i] = result.rows[0][j]));
  }
  return texts;
}

function utf8Text(value: Buffer): string {
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
