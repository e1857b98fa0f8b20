/**
 * float4in / float8in. PostgreSQL skips C whitespace, hands the rest to the C
 * library's strtod/strtof, and then only checks errno and trailing
 * whitespace. So the accepted grammar is the C library's: PGlite is built on
 * musl, which accepts
 *   [+-] digits [. digits] [e [+-] digits]          (decimal)
 *   [+-] 0x hexdigits [. hexdigits] [p [+-] digits] (hexadecimal, binary exponent)
 *   [+-] inf | infinity | nan | nan(chars)           (any case; a sign on NaN is ignored)
 * and stops at the longest valid prefix ("1e+x" ends before the 'e').
 *
 * Range errors follow errno == ERANGE: a decimal that rounds to infinity or
 * a nonzero decimal that rounds to zero is an error, denormals are fine. For
 * hex input musl only flags overflow when the exponent is far out of range,
 * so '0x1p1024' quietly becomes Infinity; that is reproduced too.
 */
import * as chars from './chars.ts';
import { floatOutOfRange, invalidSyntax } from './pg-errors.ts';

// Hot-path helpers and character codes are module-local on purpose: tsx (and
// vitest) compile an imported binding into a getter call at every use, which
// costs more than the parsing itself in a per-character loop.
const { digitValue, isDigit, skipCSpaces } = chars;
const CH_DOT = 46;
const CH_LPAREN = 40;
const CH_MINUS = 45;
const CH_PLUS = 43;
const CH_RPAREN = 41;
const CH_UNDERSCORE = 95;
const CH_0 = 48;
const CH_LOWER_E = 101;
const CH_LOWER_I = 105;
const CH_LOWER_N = 110;
const CH_LOWER_P = 112;
const CH_LOWER_X = 120;
/** OR-ing an ASCII letter with this folds it to lower case. */
const LOWER_BIT = 32;

export function parseFloat8(text: string): number {
  return parseFloatText(text, false);
}

/** float4 values are returned as the double holding the exact float32 value. */
export function parseFloat4(text: string): number {
  return parseFloatText(text, true);
}

const KIND_DECIMAL = 0;
const KIND_HEX = 1;
const KIND_INFINITY = 2;
const KIND_NAN = 3;

/**
 * What the strtod scan recognised. Module-level scratch rather than a returned
 * object so that parsing a float allocates nothing (parsers never re-enter).
 */
const scan = {
  kind: KIND_DECIMAL,
  /** Index just past the number (strtod's endptr). */
  end: 0,
  negative: false,
  /** Whether any mantissa digit is nonzero: a zero result is then an underflow. */
  nonzero: false,
};

function parseFloatText(text: string, isFloat4: boolean): number {
  const sqlName = isFloat4 ? 'real' : 'double precision';
  const n = text.length;
  const start = skipCSpaces(text, 0);
  if (start === n || !scanStrtod(text, start)) throw invalidSyntax(sqlName, text);
  const end = scan.end;

  let value: number;
  switch (scan.kind) {
    case KIND_NAN:
      value = NaN;
      break;
    case KIND_INFINITY:
      value = scan.negative ? -Infinity : Infinity;
      break;
    case KIND_HEX:
      value = hexFloatValue(text, start, end, isFloat4);
      break;
    default:
      value = decimalValue(text, start, end, isFloat4);
      if (value === Infinity || value === -Infinity || (value === 0 && scan.nonzero)) {
        throw floatOutOfRange(sqlName, text, text.slice(start, end));
      }
  }
  if (end !== n && skipCSpaces(text, end) !== n) throw invalidSyntax(sqlName, text);
  return value;
}

// ---------------------------------------------------------------------------
// Scanning: musl __floatscan with pok = 1, from just after PostgreSQL's
// whitespace skip. Returns false when strtod would consume nothing.

function scanStrtod(text: string, start: number): boolean {
  let i = start;
  const first = text.charCodeAt(i);
  scan.negative = first === CH_MINUS;
  if (first === CH_MINUS || first === CH_PLUS) i++;
  const c = charAt(text, i) | LOWER_BIT;
  if (c === CH_LOWER_I) return scanInfinity(text, i);
  if (c === CH_LOWER_N) return scanNaN(text, i);
  if (charAt(text, i) === CH_0 && (charAt(text, i + 1) | LOWER_BIT) === CH_LOWER_X) {
    if (scanHexFloat(text, i + 2)) return true;
    // "0x" without hex digits: strtod takes just the "0" (the 'x' is then junk).
    scan.kind = KIND_DECIMAL;
    scan.nonzero = false;
    scan.end = i + 1;
    return true;
  }
  return scanDecimal(text, i);
}

function charAt(text: string, i: number): number {
  return i < text.length ? text.charCodeAt(i) : -1;
}

/** "inf" or "infinity"; a partial "infin" still yields "inf" (musl backs up). */
function scanInfinity(text: string, i: number): boolean {
  const word = 'infinity';
  let matched = 0;
  while (matched < 8 && (charAt(text, i + matched) | LOWER_BIT) === word.charCodeAt(matched)) matched++;
  if (matched < 3) return false;
  scan.kind = KIND_INFINITY;
  scan.end = i + (matched === 8 ? 8 : 3);
  return true;
}

/** "nan", optionally followed by "(chars)"; an unclosed '(' is left unconsumed. */
function scanNaN(text: string, i: number): boolean {
  if ((charAt(text, i + 1) | LOWER_BIT) !== 97 || (charAt(text, i + 2) | LOWER_BIT) !== CH_LOWER_N) return false;
  scan.kind = KIND_NAN;
  scan.end = i + 3;
  if (charAt(text, i + 3) === CH_LPAREN) {
    let j = i + 4;
    while (isNaNPayloadChar(charAt(text, j))) j++;
    if (charAt(text, j) === CH_RPAREN) scan.end = j + 1;
  }
  return true;
}

function isNaNPayloadChar(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === CH_UNDERSCORE;
}

function scanDecimal(text: string, from: number): boolean {
  let i = from;
  let gotDigit = false;
  let gotRadix = false;
  let nonzero = false;
  for (;;) {
    const c = charAt(text, i);
    if (isDigit(c)) {
      gotDigit = true;
      if (c !== CH_0) nonzero = true;
    } else if (c === CH_DOT && !gotRadix) gotRadix = true;
    else break;
    i++;
  }
  if (!gotDigit) return false;
  scan.kind = KIND_DECIMAL;
  scan.nonzero = nonzero;
  scan.end = scanExponent(text, i, CH_LOWER_E);
  return true;
}

/** Index past "e[+-]digits" (or "p..." for hex) at i, or i itself if that is not a valid exponent. */
function scanExponent(text: string, i: number, marker: number): number {
  if ((charAt(text, i) | LOWER_BIT) !== marker) return i;
  let j = i + 1;
  const c = charAt(text, j);
  if (c === CH_PLUS || c === CH_MINUS) j++;
  if (!isDigit(charAt(text, j))) return i;
  while (isDigit(charAt(text, j))) j++;
  return j;
}

function scanHexFloat(text: string, from: number): boolean {
  let i = from;
  let gotDigit = false;
  let gotRadix = false;
  let nonzero = false;
  for (;;) {
    const c = charAt(text, i);
    const d = digitValue(c, 16);
    if (d >= 0) {
      gotDigit = true;
      if (d !== 0) nonzero = true;
    } else if (c === CH_DOT && !gotRadix) gotRadix = true;
    else break;
    i++;
  }
  if (!gotDigit) return false;
  scan.kind = KIND_HEX;
  scan.nonzero = nonzero;
  scan.end = scanExponent(text, i, CH_LOWER_P);
  return true;
}

// ---------------------------------------------------------------------------
// Decimal values. V8's Number() is correctly rounded, as musl's strtod is.

function decimalValue(text: string, start: number, end: number, isFloat4: boolean): number {
  const numberText = start === 0 && end === text.length ? text : text.slice(start, end);
  const d = Number(numberText);
  const value = isFloat4 ? decimalToFloat32(numberText, d) : d;
  // One comparison keeps the musl emulation below off the hot path.
  if (value < 0 && value >= (isFloat4 ? -TWO_FLOAT32_DENORMALS : -TWO_FLOAT64_DENORMALS)) {
    return muslTinyNegative(numberText, isFloat4 ? FLOAT32_MIN_EXPONENT : FLOAT64_MIN_EXPONENT) ?? value;
  }
  return value;
}

/** 2^128 - 2^103: halfway between FLT_MAX and the first value that rounds to infinity. */
const FLOAT32_OVERFLOW_MIDPOINT = 3.4028235677973366e38;

/**
 * strtof rounds the decimal straight to float32; Math.fround(Number(s))
 * rounds twice. The two only differ when the double lands exactly on a
 * float32 midpoint (a tie it then breaks to even) while the decimal itself
 * lies to one side, so that case alone is re-decided exactly.
 */
function decimalToFloat32(numberText: string, d: number): number {
  const f = Math.fround(d);
  if (f === d || d !== d) return f;
  let other: number;
  if (f === Infinity || f === -Infinity) {
    if (Math.abs(d) !== FLOAT32_OVERFLOW_MIDPOINT) return f;
    other = d > 0 ? 3.4028234663852886e38 : -3.4028234663852886e38;
  } else {
    // If d is a midpoint, its mirror image of f is the other float32 neighbour.
    other = d + (d - f);
    if (Math.fround(other) !== other || other === f) return f;
  }
  const side = compareDecimalWithDouble(numberText, d);
  if (side === 0) return f;
  const awayFromZero = side > 0 === d > 0;
  return Math.abs(f) > Math.abs(other) === awayFromZero ? f : other;
}

/** Sign of (exact value of the decimal text) - d, for finite nonzero d. */
function compareDecimalWithDouble(numberText: string, d: number): number {
  const { digits, decimalExponent } = decimalDigitsOf(numberText);
  const negative = numberText.charCodeAt(0) === CH_MINUS;

  // d = mantissa * 2^-binaryShift exactly; scaling by 2 never rounds here.
  let mantissa = Math.abs(d);
  let binaryShift = 0;
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2;
    binaryShift++;
  }
  let left = digits << BigInt(binaryShift);
  let right = BigInt(mantissa);
  if (decimalExponent >= 0) left *= 10n ** BigInt(decimalExponent);
  else right *= 10n ** BigInt(-decimalExponent);
  const magnitudeOrder = left > right ? 1 : left < right ? -1 : 0;
  return negative ? -magnitudeOrder : magnitudeOrder;
}

/** Exponent of the smallest denormal: 2^-1074 (double), 2^-149 (float32). */
const FLOAT64_MIN_EXPONENT = -1074;
const FLOAT32_MIN_EXPONENT = -149;
const TWO_FLOAT64_DENORMALS = 2 * 2 ** FLOAT64_MIN_EXPONENT;
const TWO_FLOAT32_DENORMALS = 2 * 2 ** FLOAT32_MIN_EXPONENT;
/** musl computes in IEEE quad (wasm32 long double): 113-bit significands. */
const QUAD_BITS = 113;

/**
 * musl's decimal strtod/strtof is correctly rounded except for one sign bug,
 * reproduced here. It scales the value to y * 2^e2 with y in (2^112, 2^113],
 * rounds the integer part of y at the target precision, and folds the
 * fraction of y (the decimal "tail") in as +0.25 / 0.5 / 0.75 plus a sticky
 * `frac++` that ignores the sign. That only matters when the rounding unit
 * is so coarse that the quarter is lost in frac's own precision: results of
 * at most one significant bit, i.e. values within two units of the smallest
 * denormal. There a negative value just above a midpoint rounds toward zero
 * (PostgreSQL may then even report underflow). Returns undefined when the
 * value is outside that case and correct rounding applies.
 */
function muslTinyNegative(numberText: string, minExponent: number): number | undefined {
  const { digits, decimalExponent } = decimalDigitsOf(numberText);
  if (digits === 0n || decimalExponent >= 0) return undefined;
  const denominator = 10n ** BigInt(-decimalExponent);
  for (const bits of [0, 1]) {
    // e2 such that the result keeps `bits` bits: bits = 113 + e2 - minExponent.
    const e2 = bits - QUAD_BITS + minExponent;
    const numerator = digits << BigInt(-e2);
    if (numerator <= denominator << 112n || numerator > denominator << 113n) continue;
    const integerPart = numerator / denominator;
    const remainder = numerator % denominator;
    if (remainder === 0n) return undefined; // no tail: nothing goes wrong
    const unit = 1n << BigInt(QUAD_BITS - bits);
    const below = integerPart % unit; // |frac| before the tail
    // frac + tail quarter, rounded to quad precision, in quarters.
    let fracQuarters = roundToQuad(below * 4n + tailQuarters(remainder, denominator));
    if (fracQuarters % 4n === 0n) fracQuarters -= 4n; // `frac++` on a negative frac
    const half = unit * 2n; // unit / 2, in quarters
    const base = integerPart - below;
    const up = fracQuarters > half || (fracQuarters === half && (base / unit) % 2n === 1n);
    const units = Number((base + (up ? unit : 0n)) / unit);
    // Zero goes back to the caller as -0, which it reports as underflow.
    return -(units * 2 ** minExponent);
  }
  return undefined;
}

/** The tail y - floor(y) = remainder / denominator summarised as musl does, in quarters. */
function tailQuarters(remainder: bigint, denominator: bigint): bigint {
  // musl looks at the next base-10^9 word of the tail and whether more follow.
  const scaled = remainder * 1000000000n;
  const word = scaled / denominator;
  const more = scaled % denominator !== 0n;
  if (word < 500000000n) return 1n;
  if (word > 500000000n) return 3n;
  return more ? 3n : 2n;
}

/** A non-negative value rounded half-even to a 113-bit significand (in whatever fixed units it is given). */
function roundToQuad(value: bigint): bigint {
  const excess = value.toString(2).length - QUAD_BITS;
  if (excess <= 0) return value;
  const shift = BigInt(excess);
  const step = 1n << shift;
  const kept = value >> shift;
  const dropped = value & (step - 1n);
  const half = step >> 1n;
  const rounded = dropped > half || (dropped === half && (kept & 1n) === 1n) ? kept + 1n : kept;
  return rounded << shift;
}

/** Digits and power of ten of a decimal numberText: value = digits * 10^decimalExponent. */
function decimalDigitsOf(numberText: string): { digits: bigint; decimalExponent: number } {
  let i = 0;
  const first = numberText.charCodeAt(0);
  if (first === CH_PLUS || first === CH_MINUS) i = 1;
  let digitText = '';
  let fractionDigits = 0;
  let inFraction = false;
  for (; i < numberText.length; i++) {
    const c = numberText.charCodeAt(i);
    if (c === CH_DOT) inFraction = true;
    else if (isDigit(c)) {
      digitText += numberText[i];
      if (inFraction) fractionDigits++;
    } else break;
  }
  const exponent = i < numberText.length ? Number(numberText.slice(i + 1)) : 0;
  return { digits: BigInt(digitText), decimalExponent: exponent - fractionDigits };
}

// ---------------------------------------------------------------------------
// Hexadecimal values, rounded exactly (musl keeps 116 bits plus a sticky bit,
// which is exact for deciding a 53- or 24-bit rounding).

/** Exponent beyond which every nonzero hex mantissa over- or underflows. */
const EXPONENT_CAP = 1e15;

function hexFloatValue(text: string, start: number, end: number, isFloat4: boolean): number {
  let digitsStart = start;
  while ((charAt(text, digitsStart + 1) | LOWER_BIT) !== CH_LOWER_X) digitsStart++;
  digitsStart += 2;
  let digitsEnd = digitsStart;
  let dot = -1;
  for (; digitsEnd < end; digitsEnd++) {
    const c = text.charCodeAt(digitsEnd);
    if (c === CH_DOT) dot = digitsEnd;
    else if (digitValue(c, 16) < 0) break;
  }
  // One BigInt parse of the digit string: folding digits in one by one is quadratic.
  const digits = dot < 0 ? text.slice(digitsStart, digitsEnd) : text.slice(digitsStart, dot) + text.slice(dot + 1, digitsEnd);
  const mantissa = BigInt('0x' + digits);
  const exponent = digitsEnd < end ? cappedExponent(text, digitsEnd + 1, end) : 0;
  if (mantissa === 0n) return scan.negative ? -0 : 0;
  const fractionDigits = dot < 0 ? 0 : digitsEnd - dot - 1;
  const significantDigits = digits.length - leadingZeroCount(digits);

  const sqlName = isFloat4 ? 'real' : 'double precision';
  const minExponent = isFloat4 ? FLOAT32_MIN_EXPONENT : FLOAT64_MIN_EXPONENT;
  // musl flags overflow only via this pre-check on 0.D1D2..D8 x 2^e2 (8 hex
  // digits = 32 bits); larger-but-finite exponents overflow silently later.
  const radixPosition = significantDigits - fractionDigits;
  if (4 * radixPosition - 32 + exponent > -minExponent) {
    throw floatOutOfRange(sqlName, text, text.slice(start, end));
  }
  if (4 * radixPosition - 32 + exponent < minExponent - 2 * QUAD_BITS) {
    throw floatOutOfRange(sqlName, text, text.slice(start, end));
  }
  const binaryExponent = exponent - 4 * fractionDigits;
  const topBit = binaryExponent + mantissa.toString(2).length - 1;
  if (topBit < minExponent - 1) {
    // Below half the smallest denormal musl rounds at a bit above the value,
    // to 2^(topBit+1) or, for an exact power of two (a tie), to zero with
    // ERANGE. Narrowing 2^(topBit+1) to the target then gives zero quietly.
    if ((mantissa & (mantissa - 1n)) === 0n) throw floatOutOfRange(sqlName, text, text.slice(start, end));
    return scan.negative ? -0 : 0;
  }
  const magnitude = roundBinary(mantissa, binaryExponent, isFloat4 ? 24 : 53, minExponent);
  if (magnitude === 0) throw floatOutOfRange(sqlName, text, text.slice(start, end));
  const value = isFloat4 ? Math.fround(magnitude) : magnitude;
  return scan.negative ? -value : value;
}

function leadingZeroCount(digits: string): number {
  let i = 0;
  while (digits.charCodeAt(i) === CH_0) i++;
  return i;
}

function cappedExponent(text: string, from: number, end: number): number {
  let i = from;
  const negative = text.charCodeAt(i) === CH_MINUS;
  if (negative || text.charCodeAt(i) === CH_PLUS) i++;
  let value = 0;
  for (; i < end; i++) value = Math.min(value * 10 + (text.charCodeAt(i) - CH_0), EXPONENT_CAP);
  return negative ? -value : value;
}

/**
 * mantissa * 2^exponent rounded half-to-even to `precision` bits, with the
 * last bit no finer than 2^minExponent (the denormal floor). Infinity when
 * the rounded value exceeds the double range.
 */
function roundBinary(mantissa: bigint, exponent: number, precision: number, minExponent: number): number {
  const bitLength = mantissa.toString(2).length;
  const lowestKeptBit = Math.max(exponent + bitLength - precision, minExponent);
  const shift = lowestKeptBit - exponent;
  if (shift <= 0) return Number(mantissa) * 2 ** exponent;
  if (shift > bitLength) return 0; // below half the smallest unit
  const bigShift = BigInt(shift);
  let kept = mantissa >> bigShift;
  const dropped = mantissa & ((1n << bigShift) - 1n);
  const half = 1n << (bigShift - 1n);
  if (dropped > half || (dropped === half && (kept & 1n) === 1n)) kept++;
  return Number(kept) * 2 ** lowestKeptBit;
}
