/**
 * numeric in compiled expressions: values are numeric_out text (as the
 * engine's input function gives them); + - * and comparisons are exact, with
 * numeric's display scales (a sum keeps the larger, a product adds them).
 * NaN and infinities go to the store.
 */
import { SqlError, SqlState } from '../errors.ts';
import { compareNumeric, finiteNumeric, numericToString, parseNumeric, pow10, type Numeric } from '../values/index.ts';
import { NeedsStore } from './needs-store.ts';

type Finite = { kind: 'finite'; digits: bigint; scale: number };

function finite(text: string): Finite {
  const n = parseNumeric(text);
  if (n.kind !== 'finite') throw new NeedsStore('numeric NaN or infinity');
  return n as Finite;
}

/** Scales past this are PostgreSQL's limits to report. */
const largestScale = 1000;

function result(digits: bigint, scale: number): string {
  if (scale > largestScale) throw new NeedsStore('a numeric of very large scale');
  return numericToString(finiteNumeric(digits, scale));
}

function aligned(a: Finite, b: Finite): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.digits * pow10(scale - a.scale), b.digits * pow10(scale - b.scale), scale];
}

export function numericAdd(a: string, b: string): string {
  const [x, y, scale] = aligned(finite(a), finite(b));
  return result(x + y, scale);
}

export function numericSub(a: string, b: string): string {
  const [x, y, scale] = aligned(finite(a), finite(b));
  return result(x - y, scale);
}

export function numericMul(a: string, b: string): string {
  const x = finite(a);
  const y = finite(b);
  return result(x.digits * y.digits, x.scale + y.scale);
}

export function numericNeg(a: string): string {
  const x = finite(a);
  return result(-x.digits, x.scale);
}

export function numericAbs(a: string): string {
  const x = finite(a);
  return result(x.digits < 0n ? -x.digits : x.digits, x.scale);
}

export function numericCmp(a: string, b: string): number {
  return compareNumeric(parseNumeric(a) as Numeric, parseNumeric(b) as Numeric);
}

const integerRanges = {
  int2: [-32768n, 32767n, 'smallint'],
  int4: [-2147483648n, 2147483647n, 'integer'],
  int8: [-(2n ** 63n), 2n ** 63n - 1n, 'bigint'],
} as const;

/** numeric to an integer type: rounded half away from zero, then range-checked (as numeric_int4 and friends). */
export function numericToInteger(text: string, type: 'int2' | 'int4' | 'int8'): number | bigint {
  const n = parseNumeric(text);
  const [min, max, name] = integerRanges[type];
  if (n.kind === 'nan') throw new SqlError(SqlState.featureNotSupported, `cannot convert NaN to ${name}`);
  if (n.kind === 'inf') throw new SqlError(SqlState.featureNotSupported, `cannot convert infinity to ${name}`);
  const unit = pow10(n.scale);
  const magnitude = n.digits < 0n ? -n.digits : n.digits;
  let whole = magnitude / unit;
  if ((magnitude % unit) * 2n >= unit) whole += 1n;
  const rounded = n.digits < 0n ? -whole : whole;
  if (rounded < min || rounded > max) throw new SqlError(SqlState.numericValueOutOfRange, `${name} out of range`);
  return type === 'int8' ? rounded : Number(rounded);
}
