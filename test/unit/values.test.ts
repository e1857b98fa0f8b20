/**
 * Oracle tests for the value layer: every input is also given to PostgreSQL
 * (PGlite) and the JS result or error (SQLSTATE, message, detail) must be
 * identical. Inputs are hand-picked edge cases plus seeded random ones.
 *
 * Types with a typmod call the input function itself (numeric_in,
 * varcharin, bpcharin) because a cast such as ::varchar(3) would apply the
 * explicit-cast rules (silent truncation) instead of the input function's.
 */
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addNumeric,
  applyTypmod,
  compareNumeric,
  inputFunction,
  numericToString,
  numericTypmod,
  parseFloat8,
  parseInt4,
  parseNumeric,
  toPgText,
  type NonNullValue,
} from '../../engine/values/index.ts';
import { SqlError } from '../../engine/errors.ts';

let db: PGlite;

beforeAll(async () => {
  db = await PGlite.create();
});

afterAll(async () => {
  await db.close();
});

// ---------------------------------------------------------------------------
// Oracle machinery

type Outcome = { value: string } | { code: string; message: string; detail?: string };

interface Mismatch {
  input: string;
  typmod?: number;
  js: Outcome;
  pg: Outcome;
}

/** Runs `sql` ($1 = input, $2 = typmod when present) and returns column v, or the error. */
async function pgOutcome(sql: string, params: unknown[]): Promise<Outcome> {
  try {
    const result = await db.query<{ v: string }>(sql, params);
    return { value: result.rows[0]!.v };
  } catch (e) {
    const err = e as { code: string; message: string; detail?: string };
    return errorOutcome(err.code, err.message, err.detail);
  }
}

function errorOutcome(code: string, message: string, detail?: string | null): Outcome {
  return detail ? { code, message, detail } : { code, message };
}

function jsOutcome(run: () => string): Outcome {
  try {
    return { value: run() };
  } catch (e) {
    if (!(e instanceof SqlError)) throw e;
    return errorOutcome(e.code, e.message, e.detail);
  }
}

/**
 * Compares JS and PostgreSQL on every input. `sql` selects the value as
 * column v; `show` renders the JS value the way `sql` renders PostgreSQL's.
 */
async function oracle(
  inputs: readonly string[],
  typeName: string,
  typmod: number,
  sql: string,
  show: (v: NonNullValue) => string,
): Promise<{ mismatches: Mismatch[]; checked: number; errors: number }> {
  const parse = inputFunction(typeName, typmod)!;
  expect(parse).toBeDefined();
  const mismatches: Mismatch[] = [];
  let errors = 0;
  const usesTypmod = sql.includes('$2');
  for (const input of new Set(inputs)) {
    const pg = await pgOutcome(sql, usesTypmod ? [input, typmod] : [input]);
    const js = jsOutcome(() => show(parse(input)));
    if ('code' in pg) errors++;
    if (JSON.stringify(pg) !== JSON.stringify(js)) mismatches.push({ input, typmod, js, pg });
  }
  return { mismatches: mismatches.slice(0, 15), checked: new Set(inputs).size, errors };
}

/** Seeded PRNG (mulberry32) so failures reproduce. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)]!;
}

function randomInt(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

function randomDigits(rnd: () => number, count: number): string {
  let s = '';
  for (let i = 0; i < count; i++) s += String(Math.floor(rnd() * 10));
  return s;
}

/** Strings assembled from fragments that matter to number parsers. */
function fragmentSoup(rnd: () => number, fragments: readonly string[], count: number, maxParts: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = '';
    const parts = randomInt(rnd, 1, maxParts);
    for (let p = 0; p < parts; p++) s += pick(rnd, fragments);
    out.push(s);
  }
  return out;
}

function floatHex(value: number, bytes: 4 | 8): string {
  if (Number.isNaN(value)) return 'NaN';
  const view = new DataView(new ArrayBuffer(bytes));
  if (bytes === 8) view.setFloat64(0, value);
  else view.setFloat32(0, value);
  return Buffer.from(view.buffer).toString('hex');
}

/** PostgreSQL's NaN bit pattern differs from V8's; both are just "NaN". */
const FLOAT8_HEX_SQL = `select case when $1::text::float8 = 'NaN' then 'NaN' else encode(float8send($1::text::float8), 'hex') end as v`;
const FLOAT4_HEX_SQL = `select case when $1::text::float4 = 'NaN' then 'NaN' else encode(float4send($1::text::float4), 'hex') end as v`;

function float32FromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0]!;
}

function bitsOfFloat32(value: number): number {
  return new Uint32Array(new Float32Array([value]).buffer)[0]!;
}

/** Decimals just above and just below the exact decimal `exact`. */
function nudged(exact: string): [string, string] {
  if (!exact.includes('.')) return [exact + '.000001', (BigInt(exact) - 1n).toString() + '.999999'];
  const last = Number(exact.at(-1)); // an exact dyadic expansion ends in 5
  return [exact + '000001', exact.slice(0, -1) + String(last - 1) + '999999'];
}

/** The exact decimal expansion of mantissa * 2^exponent (mantissa > 0). */
function exactDyadicDecimal(mantissa: bigint, exponent: number): string {
  if (exponent >= 0) return (mantissa << BigInt(exponent)).toString();
  const digits = (mantissa * 5n ** BigInt(-exponent)).toString().padStart(-exponent + 1, '0');
  const point = digits.length + exponent;
  return (digits.slice(0, point) + '.' + digits.slice(point)).replace(/0+$/, '');
}

/**
 * Values within two units of the smallest denormal, written with enough
 * digits that musl's rounding depends on its tail handling: the integer
 * part of the scaled value y (musl keeps y in (2^112, 2^113]) sits on or
 * next to a rounding midpoint, with every class of fractional tail.
 */
function muslTailInputs(minExponent: number): string[] {
  const out: string[] = [];
  const tails: [bigint, number][] = [[0n, 0], [1n, 2], [2n, 2], [3n, 2], [(1n << 39n) + 1n, 40], [1n, 40], [(1n << 40n) - 1n, 40]];
  for (const bits of [0, 1]) {
    const e2 = bits - 113 + minExponent;
    const midpoint = bits === 0 ? 1n << 112n : (1n << 112n) + (1n << 111n);
    for (const k of [-2n, -1n, 0n, 1n, 2n, 3n]) {
      for (const [tail, tailBits] of tails) {
        // (midpoint + k + tail / 2^tailBits) * 2^e2
        const text = exactDyadicDecimal(((midpoint + k) << BigInt(tailBits)) + tail, e2 - tailBits);
        out.push(text, '-' + text);
      }
    }
  }
  return out;
}

/** The exact decimal expansion of a positive finite double. */
function exactDecimal(x: number): string {
  let mantissa = x;
  let shift = 0;
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2;
    shift++;
  }
  const digits = (BigInt(mantissa) * 5n ** BigInt(shift)).toString();
  if (shift === 0) return digits;
  const padded = digits.padStart(shift + 1, '0');
  return padded.slice(0, padded.length - shift) + '.' + padded.slice(padded.length - shift);
}

// ---------------------------------------------------------------------------
// Integers

const INTEGER_EDGE_CASES = [
  '0', '1', '-1', '+1', '-0', '+0', ' 1', '1 ', ' \t\n\v\f\r1\r\n', '00001', '-00001', '000000000000000000000000000042',
  '1_000', '1__0', '_1', '1_', '-_1', '+_1', '1_0_0', '0_1',
  '0x1F', '0X1f', '0x', '0x_', '0x_1', '0x1_', '0x__1', '0x1_F', '-0x1F', '+0x1f', '0xg', ' 0xff ',
  '0o17', '0O17', '0o8', '0o_7', '0b101', '0B11', '0b2', '0b', '0b_1', '-0b1', '00x1', '0x-1',
  '', ' ', '-', '+', '--1', '+-1', '- 1', '1 2', 'abc', '1.0', '1.', '.1', '1e3', '1x', 'x1',
  '\u00a01', '1\u00a0', '\uff11', '1\u0000', '\u0000', 'a\u0000', '\ud800', '1\udc00',
  '32767', '32768', '-32768', '-32769', '0x7fff', '0x8000', '-0x8000', '-0x8001', '0x7FFF ', '3276_7',
  '2147483647', '2147483648', '-2147483648', '-2147483649', '2147483649x', '21474836470', '99999999999', '99999999999x',
  '0x7fffffff', '0x80000000', '-0x80000000', '-0x80000001', '0o17777777777', '0o20000000000', '-0o20000000000',
  '0b1111111111111111111111111111111', '0b10000000000000000000000000000000', '-0b10000000000000000000000000000000',
  '9223372036854775807', '9223372036854775808', '-9223372036854775808', '-9223372036854775809',
  '9223372036854775807 ', ' -9223372036854775808', '9223372036854775809x', '92233720368547758070', '92233720368547758079x',
  '9300000000000000000x', '99999999999999999999', '-99999999999999999999', '0x7fffffffffffffff', '0x8000000000000000',
  '-0x8000000000000000', '-0x8000000000000001', '0x10000000000000000', '1_000_000_000_000_000_000', '9_223_372_036_854_775_807',
  '1234567890123456', '-1234567890123456', '12345678901234567', '123456789012345678', '-999999999999999999',
  '0000000000000000000000009223372036854775807', '1' + '0'.repeat(400), '-' + '9'.repeat(30) + 'x',
  '9'.repeat(20000), '0'.repeat(20000) + '7', '-' + '0'.repeat(20000) + '1', ' ' + '9'.repeat(20000) + ' ', '0x' + 'f'.repeat(20000),
];

function integerRandomInputs(seed: number, bits: 16 | 32 | 64): string[] {
  const rnd = random(seed);
  const out: string[] = [];
  const limit = 1n << BigInt(bits - 1);
  for (let i = 0; i < 120; i++) {
    // Values around the type's limits, in every base.
    const offset = BigInt(randomInt(rnd, -3, 3));
    const value = (rnd() < 0.5 ? limit : -limit) + offset;
    const base = pick(rnd, [10, 10, 16, 8, 2]);
    const magnitude = value < 0n ? -value : value;
    const prefix = base === 16 ? '0x' : base === 8 ? '0o' : base === 2 ? '0b' : '';
    out.push((value < 0n ? '-' : pick(rnd, ['', '+'])) + prefix + magnitude.toString(base));
  }
  for (let i = 0; i < 120; i++) {
    const digits = randomDigits(rnd, randomInt(rnd, 1, bits === 64 ? 21 : bits === 32 ? 11 : 6));
    out.push(pick(rnd, ['', '-', '+', ' ', ' -']) + digits + pick(rnd, ['', '', '', ' ', 'x', '_1', '.0']));
  }
  out.push(...fragmentSoup(rnd, ['1', '7', '0', '9', '_', ' ', '-', '+', 'x', 'b', 'o', 'f', '0x', '00', '.', 'e'], 200, 7));
  return out;
}

describe('integer input matches PostgreSQL', () => {
  for (const [typeName, bits, seed] of [['int2', 16, 1], ['int4', 32, 2], ['int8', 64, 3]] as const) {
    it(typeName, async () => {
      const inputs = [...INTEGER_EDGE_CASES, ...integerRandomInputs(seed, bits)];
      const result = await oracle(inputs, typeName, -1, `select $1::text::${typeName}::text as v`, String);
      expect(result.mismatches).toEqual([]);
      expect(result.errors).toBeGreaterThan(50);
    });
  }

  it('returns numbers for int2/int4 and bigint for int8, never -0', () => {
    expect(inputFunction('int4', -1)!('-0')).toBe(0);
    expect(Object.is(inputFunction('int4', -1)!('-0'), -0)).toBe(false);
    expect(Object.is(inputFunction('int2', -1)!(' -0 '), -0)).toBe(false);
    expect(inputFunction('int8', -1)!('-9223372036854775808')).toBe(-9223372036854775808n);
    expect(inputFunction('bigint', -1)!('12')).toBe(12n);
  });
});

// ---------------------------------------------------------------------------
// Floats

const FLOAT_EDGE_CASES = [
  '0', '-0', '+0', '-0.0', '0.0', '1', '1.5', ' 1.5 ', '\t-1.5e-3\n', '.5', '5.', '-.5', '+.5', '.', '-.', '.e1', '1.e3',
  '1e', '1e+', '1e-', '1e+x', '1.5e', '1e5.5', '1E5', '1e+05', '1e-05', '1e0010', '1e1_0', '1_000', '1 x', '1x', 'x', '',
  '  ', '- 1', '+-1', '--1', '1d', '1f', '1L', '\u00a01', '1\u00a0', '1\u0000', '\u0000', '1e400\u0000', '\ud800', '1.5\udfff',
  'NaN', 'nan', 'NAN', '-NaN', '+nan', ' nan ', 'nan(123)', 'nan()', 'nan(a_b)', 'nan(', 'nan(1', 'nan(-)', 'nanx', 'na', 'n',
  'inf', '-inf', '+inf', 'INF', 'iNf', 'Infinity', '-Infinity', '+Infinity', 'INFINITY', 'infinit', 'infin', 'infinityx',
  'infx', 'in', 'i', ' -infinity ', '- inf', '+-inf', 'Inf inity',
  '1e308', '1e309', '-1e309', '1.7976931348623157e308', '1.7976931348623158e308', '1.7976931348623159e308',
  '1.797693134862315807e308', '1.797693134862315808e308', '1e400', '-1e400', ' 1e400 x', '1e400x', '1e400e', '1e99999999999999999999',
  '1e-400', '-1e-400', '1e-99999999999999999999', '0e-400', '0.0e999999', '000e999999999999999999', '1e-310', '5e-324', '2e-324', '3e-324',
  '2.4703282292062328e-324', '2.4703282292062327e-324', '2.4703282292062328e-324x', '4.9406564584124654e-324',
  '2.2250738585072011e-308', '2.2250738585072014e-308', '2.225073858507201e-308', '4.9e-324', '-4.9e-324',
  '1' + '0'.repeat(308), '1' + '0'.repeat(309), '0.' + '0'.repeat(323) + '5', '0.' + '0'.repeat(324) + '1',
  '0.1', '0.2', '0.3', '1e22', '1e23', '8.98846567431158e307', '123456789012345678901234567890', '9007199254740993',
  '9007199254740993.0000000000000000000000001', '0.' + '9'.repeat(400), '3.4028235e38', '3.4028236e38', '1e38', '1e39', '-1e39',
  '3.40282356779733661637539395458142568448e38', '3.40282356779733661637539395458142568447e38', '1e-45', '1e-46', '1.4e-45', '7e-46', '8e-46',
  '7.006492321624085354618647916449580656401309709382578858785341419448955413429303e-46',
  '7.006492321624085354618647916449580656401309709382578858785341419448955413429304e-46',
  '1.17549435e-38', '1.1754942e-38', '16777217', '16777216.000000000001', '33554431', '0.1e-40',
  '0x10', '0X1p3', '0x1.8p1', '0x.8', '0x1P-2', '-0x1p3', '0x', '0x.', '0xg', '0x1p', '0x1p+', '0x1px', '0x1.8.3', '0x1.8p1.5',
  '0x1p1023', '0x1p1024', '0x1p1025', '0x1.fffffffffffff8p1023', '0x1.fffffffffffff7p1023', '0x1p-1074', '0x1p-1075', '0x1.0001p-1075',
  '0x1p-1076', '0x3p-1076', '0x1p2000', '0x1p-2000', '0x0p9999', '0x0.0', '-0x0', '0x1p1100', '0x1p1106', '0x1p1107', '0x0.00000001p1100',
  '0x0.0000000000001p1300', '0x1p128', '0x1p127', '0x1.ffffffp127', '0x1.fffffep127', '0x1p-149', '0x1p-150', '0x1.000001p-150',
  '0x1p200', '0x1p-400', '0x123456789abcdef0123456789p0', '0x1.00000000000008p0', '0x1.000000000000080000000000000000001p0',
  '0x1.000000000000180000000000000000000p0', '0x1.000001p0', '0x1.0000010000000000000000000000001p0', '00x1', '0x1e3', '0x1p1_0',
  '0x1.' + 'f'.repeat(30000) + 'p0', '0x' + '1'.repeat(30000) + 'p-120000', '0x' + '1'.repeat(30000) + 'p-120200', '1' + '0'.repeat(30000) + 'e-30000',
  '0.' + '0'.repeat(30000) + '1e30000', '0x' + '0'.repeat(30000) + '1p3',
];

function floatRandomInputs(seed: number, isFloat4: boolean): string[] {
  const rnd = random(seed);
  const out: string[] = [];
  const view = new DataView(new ArrayBuffer(8));
  for (let i = 0; i < 150; i++) {
    // Random bit patterns: every magnitude, denormals included.
    view.setUint32(0, Math.floor(rnd() * 2 ** 32));
    view.setUint32(4, Math.floor(rnd() * 2 ** 32));
    let x = view.getFloat64(0);
    if (isFloat4) x = float32FromBits(Math.floor(rnd() * 2 ** 32));
    if (!Number.isFinite(x)) continue;
    out.push(String(x), x.toPrecision(randomInt(rnd, 1, 21)), x.toExponential(randomInt(rnd, 0, 20)));
  }
  for (let i = 0; i < 150; i++) {
    const exponent = isFloat4 ? randomInt(rnd, -50, 42) : randomInt(rnd, -345, 312);
    const mantissa = randomDigits(rnd, randomInt(rnd, 1, 25));
    const point = randomInt(rnd, 0, mantissa.length);
    out.push(
      pick(rnd, ['', '-', '+', ' ']) + mantissa.slice(0, point) + '.' + mantissa.slice(point) + pick(rnd, ['e', 'E']) + exponent,
    );
  }
  for (let i = 0; i < 60; i++) {
    const digits = Math.floor(rnd() * 2 ** 32).toString(16) + Math.floor(rnd() * 2 ** 32).toString(16);
    const exponent = isFloat4 ? randomInt(rnd, -220, 140) : randomInt(rnd, -1150, 1100);
    out.push(`${pick(rnd, ['', '-'])}0x${digits.slice(0, 3)}.${digits.slice(3)}p${exponent}`);
  }
  out.push(...fragmentSoup(rnd, ['1', '0', '9', '.', 'e', '-', '+', ' ', 'x', 'p', 'inf', 'nan', 'Infinity', '(', ')', '_'], 200, 6));
  if (isFloat4) out.push(...float32MidpointInputs(rnd));
  out.push(...muslTailInputs(isFloat4 ? -149 : -1074));
  return out;
}

/**
 * Decimals exactly on, just above and just below float32 rounding midpoints,
 * where converting via a double would round twice.
 */
function float32MidpointInputs(rnd: () => number): string[] {
  const out: string[] = [];
  const bitPatterns = [0, 1, 0x7f7ffffe, 0x7f7fffff, 0x007fffff, 0x00800000, 0x3f800000, 0x3f7fffff];
  for (let i = 0; i < 40; i++) bitPatterns.push(Math.floor(rnd() * 0x7f800000));
  for (const bits of bitPatterns) {
    const low = float32FromBits(bits);
    const high = bits === 0x7f7fffff ? 2 ** 128 : float32FromBits(bits + 1);
    const exact = exactDecimal((low + high) / 2);
    const [above, below] = nudged(exact);
    out.push(exact, above, below, '-' + exact, '-' + above, '-' + below);
    const double = (low + high) / 2;
    out.push(String(double), double.toPrecision(17));
  }
  return out;
}

describe('float input matches PostgreSQL', () => {
  it('float8', async () => {
    const inputs = [...FLOAT_EDGE_CASES, ...floatRandomInputs(4, false)];
    const result = await oracle(inputs, 'float8', -1, FLOAT8_HEX_SQL, (v) => floatHex(v as number, 8));
    expect(result.mismatches).toEqual([]);
    expect(result.checked).toBeGreaterThan(800);
  });

  it('float4', async () => {
    const inputs = [...FLOAT_EDGE_CASES, ...floatRandomInputs(5, true)];
    const result = await oracle(inputs, 'float4', -1, FLOAT4_HEX_SQL, (v) => floatHex(v as number, 4));
    expect(result.mismatches).toEqual([]);
    expect(result.checked).toBeGreaterThan(800);
  });

  it('float4 values are exact float32 values', () => {
    const parse = inputFunction('real', -1)!;
    expect(parse('0.1')).toBe(Math.fround(0.1));
    expect(bitsOfFloat32(parse('1.4e-45') as number)).toBe(1);
  });
});

// ---------------------------------------------------------------------------
// numeric

const NUMERIC_EDGE_CASES = [
  '0', '-0', '+0', '0.000', '-0.00', '1', '1.50', '-1.50', '1e3', '1E+3', '1e-3', '1.5e2', '1.5e-2', '1.50e1', '.5', '5.', '-.5', '+.5',
  '.', '-', '+', '', ' ', '  12  ', '12 3', '1.2.3', '00012.3400', '-00012.3400', '0.0e5', '5e-3', '1e', '1e+', '1e-', '1e+x', '.e3', 'e3',
  '1.e3', '1_000.000_1', '1_000.5_', '1_.5', '1._5', '._5', '1__0', '_1', '1_', '1.5_0', '1e_3', '1_e3', '1e1_0', '1e1__0', '1e+_1',
  '0x1F', '0x1F.1', '0x_1F', '0x__1', '0x1_', '-0x1F', '+0x1f', '0X1f', '0o17', '0O17', '0b101', '0B1', '0b1.1', '0x', '0xg', '0x1e3', '0b2',
  '-0x0', '0x8000000000000000', '0xffffffffffffffffffffffff', ' 0x10 ', '0x10 x', '00x1',
  'NaN', 'nan', 'NAN', '  NaN  ', '+NaN', '-NaN', 'nanx', 'NaN x', 'Infinity', '-Infinity', '+Infinity', 'inf', '-inf', '+inf', 'INF',
  'infinity', '  -inf ', 'infinityx', 'infin', 'Inf inity', '- inf', 'i', 'n',
  '1e-16383', '1e-16384', '0e200000', '0.0e-20000', '1e131071', '1e131072', '9.9e131071', '0.1e131072', '1e1073741823',
  '1e1073741824', '1e1073741824x', '1e-1073741823', '1e-1073741824', '1e-99999999999x', '1e99999999999999999999',
  '1' + '0'.repeat(131071), '1' + '0'.repeat(131072), '1' + '0'.repeat(131072) + 'x', '0.' + '0'.repeat(16382) + '1',
  '0.' + '0'.repeat(16383) + '1', '0x' + 'f'.repeat(108860), '0x' + 'f'.repeat(108870), '0x' + 'f'.repeat(108870) + '_',
  '0x' + 'f'.repeat(108870) + 'x', '0b' + '1'.repeat(435500) + '_', '0o' + '7'.repeat(145200) + '_x',
  '123456789012345678901234567890.123456789012345678901234567890', '1\u0000', '1e9999999999\u0000', '\ud800', '1.5\u00a0',
];

function numericRandomInputs(seed: number): string[] {
  const rnd = random(seed);
  const out: string[] = [];
  for (let i = 0; i < 250; i++) {
    let integer = randomDigits(rnd, randomInt(rnd, 0, 12));
    let fraction = randomDigits(rnd, randomInt(rnd, 0, 10));
    if (rnd() < 0.2) integer = '0'.repeat(randomInt(rnd, 1, 3)) + integer;
    if (rnd() < 0.2) fraction += '0'.repeat(randomInt(rnd, 1, 3));
    if (rnd() < 0.1 && integer.length > 1) integer = integer[0] + '_' + integer.slice(1);
    let s = pick(rnd, ['', '', '-', '+', ' ']) + integer;
    if (fraction || rnd() < 0.3) s += '.' + fraction;
    if (rnd() < 0.3) s += pick(rnd, ['e', 'E']) + pick(rnd, ['', '-', '+']) + randomInt(rnd, 0, 25);
    if (rnd() < 0.1) s += pick(rnd, [' ', 'x', '_', '.']);
    out.push(s);
  }
  out.push(...fragmentSoup(rnd, ['1', '0', '9', '5', '.', 'e', '-', '+', ' ', '_', 'x', 'inf', 'NaN', '0x', '0b'], 200, 6));
  return out;
}

/** numeric(p,s) typmods, including negative scales and scale > precision (PostgreSQL 15+). */
const NUMERIC_TYPMODS: readonly [number, number][] = [
  [1, 0], [3, 1], [5, 2], [3, 0], [3, 3], [3, 5], [3, -2], [4, -1], [10, 4], [12, 2], [20, 10], [1000, 1000], [1000, 0], [2, -1000],
];

describe('numeric input matches PostgreSQL', () => {
  const sql = 'select numeric_in($1::text::cstring, 0, $2)::text as v';

  it('numeric without typmod', async () => {
    const inputs = [...NUMERIC_EDGE_CASES, ...numericRandomInputs(6)];
    const result = await oracle(inputs, 'numeric', -1, sql, String);
    expect(result.mismatches).toEqual([]);
  });

  it('numeric(p,s)', async () => {
    const rnd = random(7);
    const smallInputs = [
      ...NUMERIC_EDGE_CASES.filter((s) => s.length < 100),
      '999.5', '999.49', '-999.5', '0.005', '-0.005', '0.0049', '99.95', '0.045', '12345', '12350', '-12350', '1e-1000000',
      '1e1000000', '1e10000000000', '0.0e-99999', '12.5e-1', '1234.5e-2',
      '0.004' + '9'.repeat(30000), '0.005' + '0'.repeat(30000) + '1', '-0.005' + '0'.repeat(30000), '1' + '0'.repeat(30000) + 'e-30000',
    ];
    const mismatches: Mismatch[] = [];
    for (const [precision, scale] of NUMERIC_TYPMODS) {
      const inputs = [...smallInputs.filter(() => rnd() < 0.3), ...numericRandomInputs(100 + precision + scale).slice(0, 60)];
      const result = await oracle(inputs, 'numeric', numericTypmod(precision, scale), sql, String);
      mismatches.push(...result.mismatches);
    }
    expect(mismatches).toEqual([]);
  });

  it('represents values exactly, keeping the display scale', () => {
    expect(parseNumeric('1.50')).toEqual({ kind: 'finite', digits: 150n, scale: 2 });
    expect(parseNumeric('1e3')).toEqual({ kind: 'finite', digits: 1000n, scale: 0 });
    expect(parseNumeric('-0.000')).toEqual({ kind: 'finite', digits: 0n, scale: 3 });
    expect(parseNumeric(' -inf ')).toEqual({ kind: 'inf', sign: -1 });
    expect(numericToString(parseNumeric('-0'))).toBe('0');
    expect(numericToString(parseNumeric('0.000'))).toBe('0.000');
  });
});

const NUMERIC_OPERANDS = [
  'NaN', 'Infinity', '-Infinity', '0', '-0.00', '0.000', '1', '-1', '1.5', '1.50', '-1.50', '0.001', '1e20', '-1e20', '12345678901234567890.0001',
  '99999999999999999999', '0.00000000000000000001',
];

function randomNumericText(rnd: () => number): string {
  const digits = randomDigits(rnd, randomInt(rnd, 1, 25));
  const point = randomInt(rnd, 0, digits.length);
  return pick(rnd, ['', '-']) + digits.slice(0, point) + '.' + digits.slice(point) + (rnd() < 0.2 ? `e${randomInt(rnd, -30, 30)}` : '');
}

describe('numeric arithmetic matches PostgreSQL', () => {
  it('addNumeric and compareNumeric', async () => {
    const rnd = random(8);
    const pairs: [string, string][] = [];
    for (const a of NUMERIC_OPERANDS) for (const b of NUMERIC_OPERANDS) pairs.push([a, b]);
    for (let i = 0; i < 300; i++) {
      const a = randomNumericText(rnd);
      pairs.push([a, rnd() < 0.1 ? a : rnd() < 0.1 ? pick(rnd, NUMERIC_OPERANDS) : randomNumericText(rnd)]);
    }
    const mismatches: unknown[] = [];
    for (const [a, b] of pairs) {
      const result = await db.query<{ sum: string; cmp: number }>(
        `select ($1::text::numeric + $2::text::numeric)::text as sum,
                case when $1::text::numeric < $2::text::numeric then -1
                     when $1::text::numeric = $2::text::numeric then 0 else 1 end as cmp`,
        [a, b],
      );
      const x = parseNumeric(a);
      const y = parseNumeric(b);
      const js = { sum: numericToString(addNumeric(x, y)), cmp: compareNumeric(x, y) };
      if (JSON.stringify(js) !== JSON.stringify(result.rows[0])) mismatches.push({ a, b, js, pg: result.rows[0] });
    }
    expect(mismatches.slice(0, 15)).toEqual([]);
  });

  it('applyTypmod matches a cast to numeric(p,s)', async () => {
    const rnd = random(9);
    const mismatches: unknown[] = [];
    for (const [precision, scale] of NUMERIC_TYPMODS) {
      const values = [...NUMERIC_OPERANDS, '999.5', '-0.005', '12350', ...Array.from({ length: 25 }, () => randomNumericText(rnd))];
      for (const value of values) {
        const pg = await pgOutcome(`select $1::text::numeric::numeric(${precision},${scale})::text as v`, [value]);
        const js = jsOutcome(() => numericToString(applyTypmod(parseNumeric(value), precision, scale)));
        if (JSON.stringify(pg) !== JSON.stringify(js)) mismatches.push({ value, precision, scale, js, pg });
      }
    }
    expect(mismatches.slice(0, 15)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// boolean and character types

const BOOL_WORDS = ['t', 'tr', 'tru', 'true', 'f', 'fa', 'fal', 'fals', 'false', 'y', 'ye', 'yes', 'n', 'no', 'o', 'on', 'of', 'off', '1', '0'];

describe('bool and character input match PostgreSQL', () => {
  it('bool', async () => {
    const rnd = random(10);
    const inputs = [
      ...BOOL_WORDS, 'TRUE', 'False', 'YES', 'On', 'OFF', 'oN', ' t', 't ', ' \tyes\n ', 'truee', 'yess', 'offf', 'onn', 'o ', ' o', '01', '10',
      '00', '11', '', ' ', 'x', 'tru e', 'true1', '\u00a0t', 't\u0000', '2', '-1', '+1', 'tRuE', 'FaLsE', 'nO', 'N', 'Y', 'of f', '\ud800',
    ];
    for (let i = 0; i < 200; i++) {
      let word = pick(rnd, BOOL_WORDS);
      word = [...word].map((c) => (rnd() < 0.3 ? c.toUpperCase() : c)).join('');
      inputs.push(pick(rnd, ['', ' ', '\t', 'x']) + word + pick(rnd, ['', '', ' ', '\n', 'e', 's', 'f']));
    }
    const result = await oracle(inputs, 'bool', -1, 'select $1::text::bool::text as v', String);
    expect(result.mismatches).toEqual([]);
  });

  const alphabet = ['a', 'b', ' ', ' ', 'é', '😀', '\t', 'Z', '\u3042'];
  function randomStrings(seed: number, count: number, maxLength: number): string[] {
    const rnd = random(seed);
    const out: string[] = ['', ' ', 'abc', 'abc   ', 'abcd', 'ab😀', 'ab😀 ', 'ab😀😀', '😀😀😀    ', 'ab\u0000', '\ud800', 'a\udc00b  '];
    for (let i = 0; i < count; i++) {
      let s = '';
      const length = randomInt(rnd, 0, maxLength);
      for (let k = 0; k < length; k++) s += pick(rnd, alphabet);
      out.push(s);
    }
    return out;
  }

  it('text', async () => {
    const result = await oracle(randomStrings(11, 60, 10), 'text', -1, 'select $1::text as v', String);
    expect(result.mismatches).toEqual([]);
  });

  it('varchar(n)', async () => {
    const mismatches: Mismatch[] = [];
    for (const length of [1, 2, 3, 5]) {
      const sql = 'select varcharin($1::text::cstring, 0, $2)::text as v';
      const result = await oracle(randomStrings(12 + length, 60, 8), 'varchar', length + 4, sql, String);
      mismatches.push(...result.mismatches);
    }
    const unlimited = await oracle(randomStrings(20, 20, 8), 'character varying', -1, 'select varcharin($1::text::cstring, 0, -1)::text as v', String);
    expect([...mismatches, ...unlimited.mismatches]).toEqual([]);
  });

  it('bpchar(n)', async () => {
    const mismatches: Mismatch[] = [];
    for (const length of [1, 2, 3, 5]) {
      // bpchar::text would strip the padding; bpcharout shows it.
      const sql = 'select bpcharout(bpcharin($1::text::cstring, 0, $2))::text as v';
      const result = await oracle(randomStrings(30 + length, 60, 8), 'bpchar', length + 4, sql, String);
      mismatches.push(...result.mismatches);
    }
    const unpadded = await oracle(randomStrings(40, 20, 8), 'bpchar', -1, 'select bpcharout(bpcharin($1::text::cstring, 0, -1))::text as v', String);
    expect([...mismatches, ...unpadded.mismatches]).toEqual([]);
  });

  it('name', async () => {
    const rnd = random(50);
    const inputs = ['a'.repeat(63), 'a'.repeat(64), 'é'.repeat(32), 'a' + 'é'.repeat(32), '😀'.repeat(16), 'ab  ', '', 'x\u0000', '\ud800'.repeat(22)];
    for (let i = 0; i < 80; i++) {
      let s = '';
      const length = randomInt(rnd, 15, 70);
      for (let k = 0; k < length; k++) s += pick(rnd, ['a', 'é', '😀', '\u3042', ' ']);
      inputs.push(s);
    }
    const result = await oracle(inputs, 'name', -1, 'select namein($1::text::cstring)::text as v', String);
    expect(result.mismatches).toEqual([]);
  });

  it('leaves other types to the caller', () => {
    expect(inputFunction('timestamptz', -1)).toBeUndefined();
    expect(inputFunction('jsonb', -1)).toBeUndefined();
    expect(inputFunction('"char"', -1)).toBeUndefined();
    expect(inputFunction('toString', -1)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------
// Output: parameters round-trip through PostgreSQL's input functions

describe('toPgText round-trips through PostgreSQL', () => {
  it('float8 and float4', async () => {
    const rnd = random(60);
    const view = new DataView(new ArrayBuffer(8));
    const doubles = [0, -0, NaN, Infinity, -Infinity, 5e-324, -5e-324, Number.MAX_VALUE, Number.MIN_VALUE, 2.2250738585072014e-308, 1e23, 0.1, 1 / 3];
    for (let i = 0; i < 300; i++) {
      view.setUint32(0, Math.floor(rnd() * 2 ** 32));
      view.setUint32(4, Math.floor(rnd() * 2 ** 32));
      doubles.push(view.getFloat64(0));
    }
    const floats = [0, -0, NaN, Infinity, -Infinity, float32FromBits(1), float32FromBits(0x7f7fffff), float32FromBits(0x00800000), Math.fround(0.1)];
    for (let i = 0; i < 300; i++) floats.push(float32FromBits(Math.floor(rnd() * 2 ** 32)));

    const mismatches: unknown[] = [];
    for (const value of doubles) {
      const text = toPgText('float8', value);
      const pg = await pgOutcome(FLOAT8_HEX_SQL, [text]);
      if (JSON.stringify(pg) !== JSON.stringify({ value: floatHex(value, 8) })) mismatches.push({ value, text, pg });
    }
    for (const value of floats) {
      const text = toPgText('float4', value);
      const pg = await pgOutcome(FLOAT4_HEX_SQL, [text]);
      if (JSON.stringify(pg) !== JSON.stringify({ value: floatHex(value, 4) })) mismatches.push({ value, text, pg });
    }
    expect(mismatches.slice(0, 15)).toEqual([]);
  });

  it('other types', async () => {
    const cases: [string, NonNullValue, string][] = [
      ['int8', -9223372036854775808n, 'int8'],
      ['int8', 9223372036854775807n, 'int8'],
      ['int4', -2147483648, 'int4'],
      ['int2', -0, 'int2'],
      ['bool', true, 'bool'],
      ['bool', false, 'bool'],
      ['numeric', '-12.500', 'numeric'],
      ['numeric', 'NaN', 'numeric'],
      ['text', ' a\tb ', 'text'],
    ];
    for (const [typeName, value, cast] of cases) {
      const text = toPgText(typeName, value);
      const pg = await pgOutcome(`select $1::text::${cast}::text as v`, [text]);
      // What PostgreSQL stored, read back with our input function, is the value sent.
      const stored = inputFunction(typeName, -1)!((pg as { value: string }).value);
      expect(stored).toEqual(value === 0 ? 0 : value);
    }
    expect(toPgText('bool', true)).toBe('t');
    expect(toPgText('bool', false)).toBe('f');
    expect(toPgText('float8', -0)).toBe('-0');
  });
});

// ---------------------------------------------------------------------------
// Throughput (reported, not asserted)

describe('throughput', () => {
  it('parses 1M int4 and float8 strings', () => {
    const rnd = random(70);
    const count = 1_000_000;
    const ints = Array.from({ length: count }, () => String(Math.floor(rnd() * 2 ** 32) - 2 ** 31));
    const floats = Array.from({ length: count }, () => String((rnd() - 0.5) * 10 ** randomInt(rnd, -5, 8)));
    const numerics = Array.from({ length: count }, () => ((rnd() - 0.5) * 1e6).toFixed(2));
    const parseNumericText = inputFunction('numeric', numericTypmod(12, 2))!;
    const rate = (label: string, inputs: string[], parse: (s: string) => unknown) => {
      let sink = 0;
      const start = performance.now();
      for (let i = 0; i < inputs.length; i++) if (parse(inputs[i]!) !== undefined) sink++;
      const seconds = (performance.now() - start) / 1000;
      console.log(`${label}: ${((inputs.length / seconds) / 1e6).toFixed(1)}M values/s`);
      expect(sink).toBe(inputs.length);
    };
    rate('int4 parse', ints, parseInt4);
    rate('float8 parse', floats, parseFloat8);
    rate('numeric(12,2) parse', numerics, parseNumericText);
  });
});
