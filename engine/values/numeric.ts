/**
 * PostgreSQL `numeric` as an exact decimal: value = digits * 10^-scale, where
 * `scale` is PostgreSQL's display scale (dscale), so '1.50' keeps scale 2.
 *
 * Parsing transcribes numeric_in (PostgreSQL 16+, including non-decimal
 * integers and underscores); printing transcribes numeric_out; typmods
 * follow apply_typmod. Storage-format limits are PostgreSQL's: a display
 * scale above 16383 or 131072+ integer digits is "value overflows numeric format".
 */
import * as chars from './chars.ts';
import * as integer from './integer.ts';
import {
  invalidSyntax,
  numericFieldInfinite,
  numericFieldOverflow,
  numericFormatOverflow,
} from './pg-errors.ts';

// Hot-path helpers and character codes are module-local on purpose: tsx (and
// vitest) compile an imported binding into a getter call at every use, which
// costs more than the parsing itself in a per-character loop.
const { digitValue, isDigit, matchesWordCI, skipCSpaces } = chars;
const { basePrefix } = integer;
const CH_0 = 48;
const CH_DOT = 46;
const CH_MINUS = 45;
const CH_PLUS = 43;
const CH_UNDERSCORE = 95;
const CH_LOWER_E = 101;
/** OR-ing an ASCII letter with this folds it to lower case. */
const LOWER_BIT = 32;

export type Numeric =
  | { readonly kind: 'finite'; readonly digits: bigint; readonly scale: number }
  | { readonly kind: 'nan' }
  | { readonly kind: 'inf'; readonly sign: 1 | -1 };

export const NUMERIC_NAN: Numeric = Object.freeze({ kind: 'nan' });
export const NUMERIC_INFINITY: Numeric = Object.freeze({ kind: 'inf', sign: 1 });
export const NUMERIC_NEGATIVE_INFINITY: Numeric = Object.freeze({ kind: 'inf', sign: -1 });

export function finiteNumeric(digits: bigint, scale: number): Numeric {
  return { kind: 'finite', digits, scale };
}

/** NUMERIC_DSCALE_MAX. */
const MAX_DISPLAY_SCALE = 0x3fff;
/** The weight limit (32767 base-10000 digits) as a decimal exponent: values must stay below 10^131072. */
const MAX_DECIMAL_EXPONENT = 131071;
/** numeric_in refuses exponents above PG_INT32_MAX / 2 outright. */
const MAX_INPUT_EXPONENT = 1073741823;
/** typmods are the declared (precision, scale) packed as ((p << 16) | (s & 0x7ff)) + VARHDRSZ. */
const VARHDRSZ = 4;

const TYPE_NAME = 'numeric';

// ---------------------------------------------------------------------------
// Public API

/** numeric_in without a typmod. */
export function parseNumeric(text: string): Numeric {
  scanNumeric(text);
  switch (scan.kind) {
    case KIND_NAN:
      return NUMERIC_NAN;
    case KIND_INFINITY:
      return scan.negative ? NUMERIC_NEGATIVE_INFINITY : NUMERIC_INFINITY;
    case KIND_INTEGER:
      return finiteNumeric(scan.negative ? -scan.integer : scan.integer, 0);
    default:
      return decimalWithinFormat();
  }
}

/** numeric_out. */
export function numericToString(n: Numeric): string {
  if (n.kind === 'nan') return 'NaN';
  if (n.kind === 'inf') return n.sign > 0 ? 'Infinity' : '-Infinity';
  const negative = n.digits < 0n;
  let text = (negative ? -n.digits : n.digits).toString();
  if (n.scale > 0) {
    if (text.length <= n.scale) text = '0'.repeat(n.scale - text.length + 1) + text;
    const point = text.length - n.scale;
    text = text.slice(0, point) + '.' + text.slice(point);
  }
  return negative ? '-' + text : text;
}

/** numeric_add: the result keeps the larger display scale; +Inf + -Inf is NaN. */
export function addNumeric(a: Numeric, b: Numeric): Numeric {
  if (a.kind === 'nan' || b.kind === 'nan') return NUMERIC_NAN;
  if (a.kind === 'inf') return b.kind === 'inf' && b.sign !== a.sign ? NUMERIC_NAN : a;
  if (b.kind === 'inf') return b;
  const scale = Math.max(a.scale, b.scale);
  const digits = a.digits * pow10(scale - a.scale) + b.digits * pow10(scale - b.scale);
  checkFormatLimits(digits, scale);
  return finiteNumeric(digits, scale);
}

/**
 * cmp_numerics: NaN equals NaN and sorts above everything, including
 * +Infinity; display scale is ignored (1.5 = 1.50).
 */
export function compareNumeric(a: Numeric, b: Numeric): -1 | 0 | 1 {
  const rankA = orderRank(a);
  const rankB = orderRank(b);
  if (rankA !== rankB) return rankA < rankB ? -1 : 1;
  if (a.kind !== 'finite' || b.kind !== 'finite') return 0;
  const scale = Math.max(a.scale, b.scale);
  const left = a.digits * pow10(scale - a.scale);
  const right = b.digits * pow10(scale - b.scale);
  return left < right ? -1 : left > right ? 1 : 0;
}

function orderRank(n: Numeric): number {
  if (n.kind === 'nan') return 3;
  if (n.kind === 'inf') return n.sign > 0 ? 2 : 0;
  return 1;
}

/**
 * numeric(precision, scale): round half away from zero to `scale` digits
 * (a negative scale rounds to tens, hundreds, ...), then require
 * |value| < 10^(precision - scale). NaN passes; infinities never fit.
 */
export function applyTypmod(n: Numeric, precision: number, scale: number): Numeric {
  if (n.kind === 'nan') return n;
  if (n.kind === 'inf') throw numericFieldInfinite(precision, scale);
  const negative = n.digits < 0n;
  const magnitude = negative ? -n.digits : n.digits;
  const significantDigits = magnitude === 0n ? 0 : magnitude.toString().length;
  return roundToTypmod(negative, magnitude, significantDigits, n.scale, precision, scale);
}

/** The atttypmod PostgreSQL stores for numeric(precision, scale). */
export function numericTypmod(precision: number, scale: number): number {
  return ((precision << 16) | (scale & 0x7ff)) + VARHDRSZ;
}

export interface NumericTypmod {
  readonly precision: number;
  readonly scale: number;
}

/** Inverse of numericTypmod; undefined for -1 (no typmod). The scale is an 11-bit signed field. */
export function decodeNumericTypmod(typmod: number): NumericTypmod | undefined {
  if (typmod < VARHDRSZ) return undefined;
  const packed = typmod - VARHDRSZ;
  return { precision: (packed >> 16) & 0xffff, scale: ((packed & 0x7ff) ^ 1024) - 1024 };
}

/**
 * numeric_in with a typmod, producing numeric_out's text directly: the
 * engine's value for numeric columns. Plain decimals that already fit are
 * sliced out of the input without building a BigInt.
 */
export function numericInputFunction(typmod: number): (text: string) => string {
  const mod = decodeNumericTypmod(typmod);
  if (mod === undefined) return (text) => numericInputText(text, -1, 0);
  const { precision, scale } = mod;
  return (text) => numericInputText(text, precision, scale);
}

// ---------------------------------------------------------------------------
// Scanning (numeric_in + set_var_from_str + set_var_from_non_decimal_integer_str)

const KIND_DECIMAL = 0;
const KIND_INTEGER = 1;
const KIND_NAN = 2;
const KIND_INFINITY = 3;

/**
 * What the last scan found. Module-level scratch so the hot path allocates
 * nothing but its result; the parsers never re-enter.
 */
const scan = {
  /** The text scanned last; the mantissa helpers read their digits from it. */
  text: '',
  kind: KIND_DECIMAL,
  negative: false,
  /** KIND_INTEGER: the magnitude of a 0x / 0o / 0b literal. */
  integer: 0n,
  /** KIND_DECIMAL: index just past the mantissa (before any exponent). */
  mantissaEnd: 0,
  /** Index of the '.', or -1. */
  dotIndex: -1,
  /** Index of the first nonzero digit, or -1 when the mantissa is zero. */
  firstNonzero: -1,
  fractionDigits: 0,
  hasUnderscore: false,
  hasExponent: false,
  exponent: 0,
};

function scanNumeric(text: string): void {
  scan.text = text;
  const n = text.length;
  let i = skipCSpaces(text, 0);
  const numberStart = i;
  scan.negative = false;
  if (i < n) {
    const c = text.charCodeAt(i);
    if (c === CH_PLUS) i++;
    else if (c === CH_MINUS) {
      scan.negative = true;
      i++;
    }
  }
  const c = i < n ? text.charCodeAt(i) : -1;
  let end: number;
  if (!isDigit(c) && c !== CH_DOT) end = scanSpecialValue(text, numberStart, i);
  else {
    const base = basePrefix(text, i);
    end = base === 10 ? scanDecimal(text, i) : scanNonDecimal(text, i + 2, base);
  }
  if (end !== n && skipCSpaces(text, end) !== n) throw invalidSyntax(TYPE_NAME, text);
}

/** NaN (unsigned, checked from before the sign), Infinity or inf; returns the end index. */
function scanSpecialValue(text: string, numberStart: number, afterSign: number): number {
  if (matchesWordCI(text, numberStart, 'nan')) {
    scan.kind = KIND_NAN;
    return numberStart + 3;
  }
  scan.kind = KIND_INFINITY;
  if (matchesWordCI(text, afterSign, 'infinity')) return afterSign + 8;
  if (matchesWordCI(text, afterSign, 'inf')) return afterSign + 3;
  throw invalidSyntax(TYPE_NAME, text);
}

function scanDecimal(text: string, from: number): number {
  const n = text.length;
  let i = from;
  let haveDot = false;
  let fractionDigits = 0;
  let firstNonzero = -1;
  let hasUnderscore = false;
  scan.dotIndex = -1;
  if (text.charCodeAt(i) === CH_DOT) {
    haveDot = true;
    scan.dotIndex = i;
    i++;
  }
  if (i >= n || !isDigit(text.charCodeAt(i))) throw invalidSyntax(TYPE_NAME, text);
  for (; i < n; ) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) {
      if (haveDot) fractionDigits++;
      if (c !== CH_0 && firstNonzero < 0) firstNonzero = i;
      i++;
    } else if (c === CH_DOT) {
      if (haveDot) throw invalidSyntax(TYPE_NAME, text);
      haveDot = true;
      scan.dotIndex = i;
      i++;
      if (i < n && text.charCodeAt(i) === CH_UNDERSCORE) throw invalidSyntax(TYPE_NAME, text);
    } else if (c === CH_UNDERSCORE) {
      // An underscore must sit between digits.
      i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) throw invalidSyntax(TYPE_NAME, text);
      hasUnderscore = true;
    } else break;
  }
  scan.kind = KIND_DECIMAL;
  scan.mantissaEnd = i;
  scan.firstNonzero = firstNonzero;
  scan.fractionDigits = fractionDigits;
  scan.hasUnderscore = hasUnderscore;
  scan.hasExponent = false;
  scan.exponent = 0;
  if (i < n && (text.charCodeAt(i) | LOWER_BIT) === CH_LOWER_E) i = scanExponent(text, i + 1);
  return i;
}

/** Exponent digits after the 'e'; unlike floats, a bad exponent is a syntax error. */
function scanExponent(text: string, from: number): number {
  const n = text.length;
  let i = from;
  let negative = false;
  if (i < n) {
    const c = text.charCodeAt(i);
    if (c === CH_PLUS) i++;
    else if (c === CH_MINUS) {
      negative = true;
      i++;
    }
  }
  if (i >= n || !isDigit(text.charCodeAt(i))) throw invalidSyntax(TYPE_NAME, text);
  let exponent = 0;
  for (; i < n; ) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) {
      exponent = exponent * 10 + (c - CH_0);
      // Raised mid-scan, so it wins over junk later in the text.
      if (exponent > MAX_INPUT_EXPONENT) throw numericFormatOverflow(text);
      i++;
    } else if (c === CH_UNDERSCORE) {
      i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) throw invalidSyntax(TYPE_NAME, text);
    } else break;
  }
  scan.hasExponent = true;
  scan.exponent = negative ? -exponent : exponent;
  return i;
}

const BITS_PER_DIGIT: Readonly<Record<number, number>> = { 2: 1, 8: 3, 16: 4 };
/** PostgreSQL accumulates this many digits in an int64 before folding them in and checking the weight. */
const DIGITS_PER_GROUP: Readonly<Record<number, number>> = { 2: 62, 8: 20, 16: 15 };
const BIGINT_PREFIX: Readonly<Record<number, string>> = { 2: '0b', 8: '0o', 16: '0x' };
/** log2(10^131072): fewer bits than this can never reach the weight limit. */
const BITS_BELOW_FORMAT_LIMIT = 435411;

function scanNonDecimal(text: string, from: number, base: number): number {
  const n = text.length;
  let i = from;
  let digitCount = 0;
  let hasUnderscore = false;
  for (; i < n; ) {
    const c = text.charCodeAt(i);
    if (digitValue(c, base) >= 0) {
      digitCount++;
      i++;
    } else if (c === CH_UNDERSCORE) {
      i++;
      if (i >= n || digitValue(text.charCodeAt(i), base) < 0) {
        throwIfGroupsOverflowed(text, from, i, base, digitCount);
        throw invalidSyntax(TYPE_NAME, text);
      }
      hasUnderscore = true;
    } else break;
  }
  if (i === from) throw invalidSyntax(TYPE_NAME, text);
  scan.kind = KIND_INTEGER;
  scan.integer = nonDecimalValue(text, from, i, base, hasUnderscore);
  if (digitCount * BITS_PER_DIGIT[base]! >= BITS_BELOW_FORMAT_LIMIT && scan.integer >= formatLimit()) {
    throw numericFormatOverflow(text);
  }
  return i;
}

function nonDecimalValue(text: string, from: number, to: number, base: number, hasUnderscore: boolean): bigint {
  let digits = text.slice(from, to);
  if (hasUnderscore) digits = digits.replaceAll('_', '');
  return BigInt(BIGINT_PREFIX[base]! + digits);
}

/**
 * PostgreSQL checks the weight limit each time it folds in a complete group
 * of digits, so a huge literal can fail with "overflows" before reaching a
 * syntax error further on. Reproduce that for a syntax error found after
 * `digitCount` digits.
 */
function throwIfGroupsOverflowed(text: string, from: number, to: number, base: number, digitCount: number): void {
  const group = DIGITS_PER_GROUP[base]!;
  const checkedDigits = Math.floor((digitCount - 1) / group) * group;
  if (checkedDigits * BITS_PER_DIGIT[base]! < BITS_BELOW_FORMAT_LIMIT) return;
  const digits = text.slice(from, to).replaceAll('_', '');
  const checked = BigInt(BIGINT_PREFIX[base]! + digits.slice(0, checkedDigits));
  if (checked >= formatLimit()) throw numericFormatOverflow(text);
}

// ---------------------------------------------------------------------------
// From a scanned decimal to a value

function significantDigitsOfScan(): number {
  if (scan.firstNonzero < 0) return 0;
  let count = 0;
  const text = scan.text;
  for (let i = scan.firstNonzero; i < scan.mantissaEnd; i++) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) count++;
  }
  return count;
}

/** The scanned mantissa from its first nonzero digit, cut to `keep` significant digits if given. */
function mantissaOfScan(keep?: number): bigint {
  if (scan.firstNonzero < 0) return 0n;
  const text = scan.text;
  const start = scan.firstNonzero;
  const end = scan.mantissaEnd;
  const dot = scan.dotIndex;
  let digits = dot > start ? text.slice(start, dot) + text.slice(dot + 1, end) : text.slice(start, end);
  if (scan.hasUnderscore) digits = digits.replaceAll('_', '');
  if (keep !== undefined && keep < digits.length) digits = digits.slice(0, keep);
  return BigInt(digits);
}

/** The scanned decimal under numeric_in's storage limits (no typmod). */
function decimalWithinFormat(): Numeric {
  const scale = scan.fractionDigits - scan.exponent;
  const displayScale = scale > 0 ? scale : 0;
  if (displayScale > MAX_DISPLAY_SCALE) throw numericFormatOverflow();
  if (scan.firstNonzero < 0) return finiteNumeric(0n, displayScale);
  const leadingExponent = significantDigitsOfScan() - 1 - scale;
  if (leadingExponent > MAX_DECIMAL_EXPONENT) throw numericFormatOverflow();
  const mantissa = mantissaOfScan();
  const magnitude = scale >= 0 ? mantissa : mantissa * pow10(-scale);
  return finiteNumeric(scan.negative ? -magnitude : magnitude, displayScale);
}

/**
 * apply_typmod on magnitude * 10^-valueScale (valueScale may be negative or
 * huge). Overflow is decided before anything large is materialised.
 */
function roundToTypmod(
  negative: boolean,
  magnitude: bigint,
  significantDigits: number,
  valueScale: number,
  precision: number,
  scale: number,
): Numeric {
  const resultScale = scale > 0 ? scale : 0;
  if (magnitude === 0n) return finiteNumeric(0n, resultScale);
  const maxIntegerDigits = precision - scale;
  // |value| >= 10^maxIntegerDigits stays so after rounding to a coarser unit.
  if (significantDigits - 1 - valueScale >= maxIntegerDigits) throw numericFieldOverflow(precision, scale);

  let units: bigint; // the value in units of 10^-scale, rounded
  const dropped = valueScale - scale;
  if (dropped <= 0) units = magnitude * pow10(-dropped);
  else if (dropped > significantDigits) units = 0n; // below 0.1 unit
  else {
    const divisor = pow10(dropped);
    units = magnitude / divisor;
    if ((magnitude % divisor) * 2n >= divisor) units++; // half away from zero
  }
  // Rounding up can add a digit (999.5 -> 1000).
  if (units >= pow10(precision)) throw numericFieldOverflow(precision, scale);
  const scaled = scale >= 0 ? units : units * pow10(-scale);
  return finiteNumeric(negative ? -scaled : scaled, resultScale);
}

function numericInputText(text: string, precision: number, scale: number): string {
  scanNumeric(text);
  switch (scan.kind) {
    case KIND_NAN:
      return 'NaN';
    case KIND_INFINITY:
      if (precision >= 0) throw numericFieldInfinite(precision, scale);
      return scan.negative ? '-Infinity' : 'Infinity';
    case KIND_INTEGER: {
      const magnitude = scan.integer;
      if (precision < 0) return numericToString(finiteNumeric(scan.negative ? -magnitude : magnitude, 0));
      const digits = magnitude === 0n ? 0 : magnitude.toString().length;
      return numericToString(roundToTypmod(scan.negative, magnitude, digits, 0, precision, scale));
    }
  }
  if (!scan.hasExponent && !scan.hasUnderscore) {
    const plain = plainDecimalText(text, precision, scale);
    if (plain !== undefined) return plain;
  }
  return numericToString(precision < 0 ? decimalWithinFormat() : decimalUnderTypmod(precision, scale));
}

/** The scanned decimal after apply_typmod. */
function decimalUnderTypmod(precision: number, scale: number): Numeric {
  const valueScale = scan.fractionDigits - scan.exponent;
  const significantDigits = significantDigitsOfScan();
  // Half-away-from-zero rounding reads only the first dropped digit, so the
  // digits after it are never turned into a BigInt (input can be huge).
  const ignorable = Math.max(0, Math.min(valueScale - scale - 1, significantDigits - 1));
  const keep = significantDigits - ignorable;
  return roundToTypmod(scan.negative, mantissaOfScan(keep), keep, valueScale - ignorable, precision, scale);
}

/**
 * numeric_out's text for a scanned decimal without exponent or underscores,
 * built from slices of the input, or undefined when rounding, padding beyond
 * a simple '0' fill, or a limit check needs the general path.
 */
function plainDecimalText(text: string, precision: number, scale: number): string | undefined {
  const { dotIndex, firstNonzero, mantissaEnd, fractionDigits, negative } = scan;
  const integerEnd = dotIndex >= 0 ? dotIndex : mantissaEnd;
  const integerDigits = firstNonzero >= 0 && firstNonzero < integerEnd ? integerEnd - firstNonzero : 0;
  let padding = 0;
  if (precision < 0) {
    if (fractionDigits > MAX_DISPLAY_SCALE || integerDigits > MAX_DECIMAL_EXPONENT) return undefined;
  } else {
    if (scale < 0 || fractionDigits > scale || integerDigits > precision - scale) return undefined;
    padding = scale - fractionDigits;
  }
  const endsWithBareDot = dotIndex >= 0 && fractionDigits === 0; // "5."
  let result: string;
  if (integerDigits > 0 && !endsWithBareDot && (!negative || text.charCodeAt(firstNonzero - 1) === CH_MINUS)) {
    // Already canonical, e.g. "-12.50" inside "  -12.50 ": one slice, or none at all.
    const start = negative ? firstNonzero - 1 : firstNonzero;
    result = start === 0 && mantissaEnd === text.length ? text : text.slice(start, mantissaEnd);
  } else {
    const integerPart = integerDigits > 0 ? text.slice(firstNonzero, integerEnd) : '0';
    const sign = negative && firstNonzero >= 0 ? '-' : '';
    result = sign + integerPart + (fractionDigits > 0 ? '.' + text.slice(dotIndex + 1, mantissaEnd) : '');
  }
  if (padding > 0) result += (fractionDigits === 0 ? '.' : '') + '0'.repeat(padding);
  return result;
}

// ---------------------------------------------------------------------------
// Helpers

const POW10_CACHE: bigint[] = [1n];
/** Covers every typmod precision (at most 1000); filled only as far as asked. */
const POW10_CACHED_UP_TO = 1024;

/** 10^k as a BigInt, cached for the exponents scales and typmods keep asking for. */
export function pow10(k: number): bigint {
  if (k <= POW10_CACHED_UP_TO) {
    while (POW10_CACHE.length <= k) POW10_CACHE.push(POW10_CACHE[POW10_CACHE.length - 1]! * 10n);
    return POW10_CACHE[k]!;
  }
  return 10n ** BigInt(k);
}

let formatLimitValue: bigint | undefined;

/** 10^131072, the first magnitude the storage format cannot hold (computed on first need). */
function formatLimit(): bigint {
  formatLimitValue ??= 10n ** BigInt(MAX_DECIMAL_EXPONENT + 1);
  return formatLimitValue;
}

/** Magnitudes below this (at any scale) are far inside the format limit; skips the big comparison. */
const SURELY_WITHIN_FORMAT = 10n ** 4096n;

function checkFormatLimits(digits: bigint, scale: number): void {
  if (scale > MAX_DISPLAY_SCALE) throw numericFormatOverflow();
  if (digits < SURELY_WITHIN_FORMAT && digits > -SURELY_WITHIN_FORMAT) return;
  const magnitude = digits < 0n ? -digits : digits;
  if (magnitude >= formatLimit() * pow10(scale)) throw numericFormatOverflow();
}
