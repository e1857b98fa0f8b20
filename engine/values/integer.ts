/**
 * int2in / int4in / int8in (pg_strtoint16/32/64_safe, PostgreSQL 16+):
 * surrounding C whitespace, one optional sign, decimal digits or a 0x / 0o / 0b
 * prefix, and single underscores between digits.
 *
 * The order of the checks matters because it decides which error a bad value
 * gets: the digit loop raises "out of range" as soon as the next digit cannot
 * fit, even if junk follows ("99999999999x" is out of range), while a value
 * that only overflows at the final sign check loses to a syntax error
 * ("2147483649x" is invalid syntax).
 */
import * as chars from './chars.ts';
import { integerOutOfRange, invalidSyntax } from './pg-errors.ts';

// Hot-path helpers and character codes are module-local on purpose: tsx (and
// vitest) compile an imported binding into a getter call at every use, which
// costs more than the parsing itself in a per-character loop.
const { digitValue, skipCSpaces } = chars;
const CH_0 = 48;
const CH_MINUS = 45;
const CH_PLUS = 43;
const CH_UNDERSCORE = 95;
/** OR-ing an ASCII letter with this folds it to lower case. */
const LOWER_BIT = 32;

interface IntegerType {
  /** The name PostgreSQL uses in error messages. */
  readonly sqlName: string;
  /** 2^(bits-1): the magnitude of the most negative value. */
  readonly minMagnitude: bigint;
}

const INT2: IntegerType = { sqlName: 'smallint', minMagnitude: 1n << 15n };
const INT4: IntegerType = { sqlName: 'integer', minMagnitude: 1n << 31n };
const INT8: IntegerType = { sqlName: 'bigint', minMagnitude: 1n << 63n };

const INT4_MAX = 2147483647;
const INT2_MAX = 32767;

export function parseInt2(text: string): number {
  return parseSmallInteger(text, INT2, INT2_MAX);
}

export function parseInt4(text: string): number {
  return parseSmallInteger(text, INT4, INT4_MAX);
}

/** The fast path for int2/int4: an optional '-' and decimal digits, nothing else. */
function parseSmallInteger(text: string, type: IntegerType, max: number): number {
  const n = text.length;
  const negative = n > 1 && text.charCodeAt(0) === CH_MINUS;
  let i = negative ? 1 : 0;
  let acc = 0;
  for (; i < n; i++) {
    const d = text.charCodeAt(i) - CH_0;
    if (d < 0 || d > 9) break;
    acc = acc * 10 + d;
  }
  if (i !== n || n === 0) return Number(parseIntegerSlow(text, type));
  // Only digits: any overflow is "out of range". A double stays exact far past
  // these limits, and past 2^53 it only matters that it is too big.
  if (acc <= max) return negative ? 0 - acc : acc; // 0 - 0 is +0, never -0
  if (negative && acc === max + 1) return -acc;
  throw integerOutOfRange(type.sqlName, text);
}

/** Digits a double holds exactly; longer plain-digit input goes through BigInt. */
const EXACT_DOUBLE_DIGITS = 15;

/** No int8 value needs more significant digits than this. */
const MAX_INT8_DIGITS = 19;

export function parseInt8(text: string): bigint {
  const n = text.length;
  const negative = n > 1 && text.charCodeAt(0) === CH_MINUS;
  let i = negative ? 1 : 0;
  let firstNonzero = -1;
  let acc = 0;
  for (; i < n; i++) {
    const d = text.charCodeAt(i) - CH_0;
    if (d < 0 || d > 9) break;
    if (d !== 0 && firstNonzero < 0) firstNonzero = i;
    acc = acc * 10 + d;
  }
  if (i !== n || n === 0) return parseIntegerSlow(text, INT8);
  // Only digits, so any overflow is "out of range". Leading zeros leave acc unchanged.
  const significantDigits = firstNonzero < 0 ? 0 : n - firstNonzero;
  if (significantDigits <= EXACT_DOUBLE_DIGITS) return BigInt(negative ? 0 - acc : acc);
  if (significantDigits > MAX_INT8_DIGITS) throw integerOutOfRange(INT8.sqlName, text);
  // BigInt() accepts exactly "[-]digits" here, leading zeros included.
  return checkRange(BigInt(text), text, INT8);
}

function checkRange(value: bigint, text: string, type: IntegerType): bigint {
  if (value >= type.minMagnitude || value < -type.minMagnitude) {
    throw integerOutOfRange(type.sqlName, text);
  }
  return value;
}

const BIG_DIGITS: readonly bigint[] = Array.from({ length: 16 }, (_, d) => BigInt(d));
const BIG_BASES: Readonly<Record<number, bigint>> = { 2: 2n, 8: 8n, 10: 10n, 16: 16n };

/** Largest magnitude accumulated in a double before switching to BigInt (2^53 / 16). */
const SAFE_ACCUMULATOR = 2 ** 49;

/**
 * The general path, a transcription of PostgreSQL's slow path. Accumulates in
 * a double while exact (always, for int2/int4) and in a BigInt beyond that.
 * Returns the signed value; callers of the int2/int4 variants convert it.
 */
function parseIntegerSlow(text: string, type: IntegerType): bigint {
  const n = text.length;
  let i = skipCSpaces(text, 0);
  let negative = false;
  if (i < n) {
    const c = text.charCodeAt(i);
    if (c === CH_MINUS) {
      negative = true;
      i++;
    } else if (c === CH_PLUS) i++;
  }
  const base = basePrefix(text, i);
  if (base !== 10) i += 2;

  // PostgreSQL refuses a digit once the value exceeds 2^(bits-1) / base.
  const limitBeforeDigit = type.minMagnitude / BIG_BASES[base]!;
  const bigBase = BIG_BASES[base]!;
  const firstDigit = i;
  // Only the int2/int4 limits are below SAFE_ACCUMULATOR, so comparing the
  // double accumulator with this rounded copy is exact whenever it can fail.
  const smallLimitBeforeDigit = Number(limitBeforeDigit);
  let small = 0;
  let big: bigint | undefined;
  for (;;) {
    const c = i < n ? text.charCodeAt(i) : -1;
    const d = digitValue(c, base);
    if (d >= 0) {
      if (big === undefined && small > SAFE_ACCUMULATOR) big = BigInt(small);
      if (big === undefined) {
        if (small > smallLimitBeforeDigit) throw integerOutOfRange(type.sqlName, text);
        small = small * base + d;
      } else {
        if (big > limitBeforeDigit) throw integerOutOfRange(type.sqlName, text);
        big = big * bigBase + BIG_DIGITS[d]!;
      }
      i++;
    } else if (c === CH_UNDERSCORE) {
      // Decimal digits may not start with '_'; "0x_1F" is fine.
      if (base === 10 && i === firstDigit) throw invalidSyntax(type.sqlName, text);
      i++;
      if (i >= n || digitValue(text.charCodeAt(i), base) < 0) throw invalidSyntax(type.sqlName, text);
    } else break;
  }
  if (i === firstDigit) throw invalidSyntax(type.sqlName, text);
  if (skipCSpaces(text, i) !== n) throw invalidSyntax(type.sqlName, text);

  const magnitude = big ?? BigInt(small);
  if (negative ? magnitude > type.minMagnitude : magnitude >= type.minMagnitude) {
    throw integerOutOfRange(type.sqlName, text);
  }
  return negative ? -magnitude : magnitude;
}

/** 16, 8 or 2 when text[i..] starts with 0x, 0o or 0b (any case); else 10. */
export function basePrefix(text: string, i: number): number {
  if (i + 1 >= text.length || text.charCodeAt(i) !== CH_0) return 10;
  switch (text.charCodeAt(i + 1) | LOWER_BIT) {
    case 120: // x
      return 16;
    case 111: // o
      return 8;
    case 98: // b
      return 2;
    default:
      return 10;
  }
}
