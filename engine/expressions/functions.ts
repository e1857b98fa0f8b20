/**
 * PostgreSQL's operators and functions over engine values, with its exact
 * results and errors (SQLSTATE and message). Every function here is strict:
 * the caller returns NULL when an argument is NULL. Where JS cannot promise
 * PostgreSQL's answer (case mapping or regular expressions past ASCII) a
 * function throws NeedsStore, and the batch is evaluated by the store.
 */
import { SqlError, SqlState } from '../errors.ts';
import { NeedsStore } from './needs-store.ts';
import { parseFloat8, toPgText, type NonNullValue } from '../values/index.ts';
import type { ExprType } from './expr.ts';
import { jsonbExists, jsonbField, jsonbText, type Jsonb } from './jsonb.ts';
import { dateBin, dateTrunc, formatTimestamp } from './timestamp.ts';
import { numericAbs, numericAdd, numericCmp, numericMul, numericNeg, numericSub, numericToInteger } from './numeric.ts';

export { NeedsStore };

type Fn = (...args: NonNullValue[]) => NonNullValue | null;

const INT2_MIN = -32768;
const INT2_MAX = 32767;
const INT4_MIN = -2147483648;
const INT4_MAX = 2147483647;
const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

function outOfRange(type: 'smallint' | 'integer' | 'bigint'): SqlError {
  return new SqlError(SqlState.numericValueOutOfRange, `${type} out of range`);
}

function divisionByZero(): SqlError {
  return new SqlError(SqlState.divisionByZero, 'division by zero');
}

/** Integers have no -0 (0 × -1 in JS has). */
function int2(v: number): number {
  if (v < INT2_MIN || v > INT2_MAX) throw outOfRange('smallint');
  return v === 0 ? 0 : v;
}

function int4(v: number): number {
  if (v < INT4_MIN || v > INT4_MAX) throw outOfRange('integer');
  return v === 0 ? 0 : v;
}

function int8(v: bigint): bigint {
  if (v < INT8_MIN || v > INT8_MAX) throw outOfRange('bigint');
  return v;
}

/** float8 results: infinite from finite inputs overflows, zero from non-zero inputs underflows (as float8mul). */
function float8(result: number, a: number, b: number, zeroCheck = false): number {
  if (result === Infinity || result === -Infinity) {
    if (Number.isFinite(a) && Number.isFinite(b)) throw new SqlError(SqlState.numericValueOutOfRange, 'value out of range: overflow');
  }
  if (zeroCheck && result === 0 && a !== 0 && b !== 0 && Number.isFinite(a) && Number.isFinite(b)) {
    throw new SqlError(SqlState.numericValueOutOfRange, 'value out of range: underflow');
  }
  return result;
}

/** C's rint(): to the nearest integer, halves to even. */
function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Integer division truncating toward zero, as C does (the integer type's range checked by the caller). */
function smallIntDiv(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return Math.trunc(a / b) || 0;
}

function smallIntMod(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  // INT_MIN % -1 is 0 in PostgreSQL (C would trap).
  return b === -1 ? 0 : a % b || 0;
}

/** float8 comparison as PostgreSQL sorts: NaN equals NaN and is above everything. */
function float8Cmp(a: number, b: number): number {
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function asciiOnly(s: string, what: string): string {
  if (!isAscii(s)) throw new NeedsStore(`${what} of non-ASCII text follows the store's locale`);
  return s;
}

/** Code points of a string (PostgreSQL counts characters, not UTF-16 units). */
function chars(s: string): string[] {
  return isAscii(s) ? (s.split('') as string[]) : Array.from(s);
}

function charLength(s: string): number {
  if (isAscii(s)) return s.length;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

function substr(s: string, start: number, count?: number): string {
  if (count !== undefined && count < 0) throw new SqlError(SqlState.substringError, 'negative substring length not allowed');
  const cs = chars(s);
  const begin = Math.max(start, 1);
  const end = count === undefined ? cs.length + 1 : start + count;
  if (end <= begin) return '';
  return cs.slice(begin - 1, end - 1).join('');
}

function left(s: string, n: number): string {
  const cs = chars(s);
  return (n >= 0 ? cs.slice(0, n) : cs.slice(0, Math.max(0, cs.length + n))).join('');
}

function right(s: string, n: number): string {
  const cs = chars(s);
  return (n >= 0 ? cs.slice(Math.max(0, cs.length - n)) : cs.slice(Math.min(cs.length, -n))).join('');
}

function trimChars(s: string, set: string, leading: boolean, trailing: boolean): string {
  const cs = chars(s);
  const drop = new Set(chars(set));
  let from = 0;
  let to = cs.length;
  if (leading) while (from < to && drop.has(cs[from])) from++;
  if (trailing) while (to > from && drop.has(cs[to - 1])) to--;
  return cs.slice(from, to).join('');
}

function strpos(s: string, sub: string): number {
  const at = s.indexOf(sub);
  return at < 0 ? 0 : charLength(s.slice(0, at)) + 1;
}

// ---- LIKE and regular expressions ----

const regexCache = new Map<string, RegExp>();

function cached(key: string, build: () => RegExp): RegExp {
  let re = regexCache.get(key);
  if (!re) {
    if (regexCache.size > 1000) regexCache.clear();
    re = build();
    regexCache.set(key, re);
  }
  return re;
}

/** LIKE's pattern (`%`, `_`, `\` escaping) as an anchored RegExp. */
function likeRegExp(pattern: string, insensitive: boolean): RegExp {
  return cached(`${insensitive ? 'i' : 'c'}${pattern}`, () => {
    let source = '';
    const cs = Array.from(pattern);
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i];
      if (c === '\\') {
        // PostgreSQL complains only if matching reaches the dangling escape.
        if (i + 1 >= cs.length) throw new NeedsStore('a LIKE pattern ending with its escape character');
        source += escapeRegExp(cs[++i]);
      } else if (c === '%') source += '[\\s\\S]*';
      else if (c === '_') source += '[\\s\\S]';
      else source += escapeRegExp(c);
    }
    return new RegExp(`^${source}$`, insensitive ? 'iu' : 'u');
  });
}

function escapeRegExp(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

function like(s: string, pattern: string, insensitive: boolean): boolean {
  if (insensitive) {
    asciiOnly(s, 'ILIKE');
    asciiOnly(pattern, 'ILIKE');
  }
  return likeRegExp(pattern, insensitive).test(s);
}

/**
 * A POSIX regular expression (PostgreSQL's ARE) as a JS RegExp, for the
 * patterns both read alike: literals, `.`, anchors, bracket lists of
 * literals and ranges, groups, alternation, the quantifiers and `\d \s \w`
 * with their escapes. Anything else (classes like [[:alpha:]], back
 * references, lookaround, embedded options) is left to the store.
 */
export function posixRegExp(pattern: string, insensitive: boolean): RegExp | undefined {
  if (!isAscii(pattern) || !readsAlike(pattern)) return undefined;
  try {
    // `.` matches a newline in an ARE; `\w` and friends are ASCII here, so non-ASCII text goes to the store.
    return new RegExp(pattern, insensitive ? 'is' : 's');
  } catch {
    return undefined;
  }
}

const escapable = new Set('dswDSW.\\/^$*+?()[]{}|-'.split(''));

/** Whether an ARE pattern uses only what JS reads the same way (see posixRegExp). */
function readsAlike(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (!escapable.has(p[i + 1] ?? '')) return false;
      i++;
    } else if (c === '[') {
      const end = bracketEnd(p, i);
      if (end < 0) return false;
      i = end;
    } else if (c === '{' && /\d/.test(p[i + 1] ?? '')) {
      // A bound: {m}, {m,} or {m,n} with m <= n <= 255, as PostgreSQL accepts them.
      const bound = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
      if (!bound) return false;
      const m = Number(bound[1]);
      const n = bound[3] ? Number(bound[3]) : m;
      if (m > 255 || n > 255 || m > n) return false;
      i += bound[0].length - 1;
    } else if (c === '(' && p[i + 1] === '?') {
      return false;
    }
  }
  return true;
}

/** The index of the `]` closing the bracket expression at `start`, or -1 when it is one JS would read otherwise. */
function bracketEnd(p: string, start: number): number {
  let i = start + 1;
  if (p[i] === '^') i++;
  // `[]…]` and `[^]…]` start with a literal `]` in an ARE, an empty class in JS.
  if (p[i] === ']') return -1;
  let previousWasRange = false;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === ']') return i;
    if (c === '[') return -1;
    if (c === '\\') {
      if (!'\\]-'.includes(p[i + 1] ?? 'x')) return -1;
      i++;
      previousWasRange = false;
      continue;
    }
    if (p[i + 1] === '-' && p[i + 2] !== ']' && p[i + 2] !== undefined) {
      // A range x-y: plain alphanumerics in order, not chained (a-c-e).
      const to = p[i + 2];
      if (previousWasRange || !/[A-Za-z0-9]/.test(c) || !/[A-Za-z0-9]/.test(to) || c > to) return -1;
      if (p[i + 3] === '-' && p[i + 4] !== ']') return -1;
      i += 2;
      previousWasRange = true;
      continue;
    }
    if (c === '-' && i !== start + 1 && p[i + 1] !== ']') return -1;
    previousWasRange = false;
  }
  return -1;
}

function regexMatch(s: string, pattern: string, insensitive: boolean): boolean {
  const re = cached(`r${insensitive ? 'i' : 'c'}${pattern}`, () => {
    const compiled = posixRegExp(pattern, insensitive);
    if (!compiled) throw new NeedsStore('a regular expression the engine does not translate');
    return compiled;
  });
  if (!isAscii(s)) throw new NeedsStore('a regular expression over non-ASCII text');
  return re.test(s);
}

// ---- float8 output ----

/**
 * float8out: the shortest digits that read back as the value, in exponent
 * form below 1e-4 or from 1e15. PostgreSQL's shortest (Ryū) never picks
 * digits lying exactly halfway to the next double, which JS's may.
 */
export function float8Text(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  let shortest = v.toExponential();
  for (let k = shortest.replace(/e.*$|[-.]/g, '').length; k <= 17 && onRoundingBoundary(shortest, v); k++) shortest = v.toExponential(k);
  const [mantissa, exp] = shortest.split('e');
  const e = Number(exp);
  if (e < -4 || e >= 15) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = v < 0 ? '-' : '';
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  if (digits.length <= e + 1) return `${sign}${digits}${'0'.repeat(e + 1 - digits.length)}`;
  return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
}

/** Whether decimal `text` (x.xxxe±n) lies exactly halfway between `v` and a neighbouring double. */
function onRoundingBoundary(text: string, v: number): boolean {
  const [digits, exp] = text.replace('-', '').split('e');
  const fraction = digits.split('.')[1] ?? '';
  const decimalDigits = BigInt(digits.replace('.', ''));
  const decimalExp = Number(exp) - fraction.length;
  // v = m · 2^e exactly.
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(v));
  const bits = view.getBigUint64(0);
  const biased = Number(bits >> 52n);
  const fractionBits = bits & ((1n << 52n) - 1n);
  const m = biased === 0 ? fractionBits : fractionBits | (1n << 52n);
  const e = (biased === 0 ? 1 : biased) - 1075;
  // The neighbours' midpoints are (4m + 2)·2^(e-2) and (4m - 2)·2^(e-2), or (4m - 1)·2^(e-2) below a power of two.
  // D·10^q = K·2^a, both sides made integers: D·10^max(q,0)·2^max(-a,0) = K·2^max(a,0)·10^max(-q,0).
  const a = e - 2;
  const pow = (base: bigint, k: number) => base ** BigInt(Math.max(k, 0));
  const decimal = decimalDigits * pow(10n, decimalExp) * pow(2n, -a);
  const midpoint = (k: bigint) => k * pow(2n, a) * pow(10n, -decimalExp);
  const lowerGap = fractionBits === 0n && biased > 1 ? 1n : 2n;
  return decimal === midpoint(4n * m + 2n) || decimal === midpoint(4n * m - lowerGap);
}

/** A value of a view's grouping key as text for the store: timestamps computed by the engine are microseconds. */
export function keyText(typeName: string, value: NonNullValue): string {
  if (typeof value === 'number' && (typeName === 'timestamptz' || typeName === 'timestamp')) return formatTimestamp(value, typeName === 'timestamptz');
  return toPgText(typeName, value);
}

/** A value's text as its type's output function prints it. */
export function outputText(type: ExprType, v: NonNullValue): string {
  switch (type) {
    case 'float8':
      return float8Text(v as number);
    case 'bool':
      return v ? 'true' : 'false';
    case 'timestamptz':
    case 'timestamp':
      return formatTimestamp(v as number, type === 'timestamptz');
    default:
      return String(v);
  }
}

// ---- the registry ----

const n = (v: NonNullValue) => v as number;
const b = (v: NonNullValue) => v as bigint;
const s = (v: NonNullValue) => v as string;

function comparisons(prefix: string, cmp: (a: NonNullValue, b: NonNullValue) => number): Record<string, Fn> {
  return {
    [`${prefix}eq`]: (a, c) => cmp(a, c) === 0,
    [`${prefix}ne`]: (a, c) => cmp(a, c) !== 0,
    [`${prefix}lt`]: (a, c) => cmp(a, c) < 0,
    [`${prefix}le`]: (a, c) => cmp(a, c) <= 0,
    [`${prefix}gt`]: (a, c) => cmp(a, c) > 0,
    [`${prefix}ge`]: (a, c) => cmp(a, c) >= 0,
  };
}

const numberCmp = (a: NonNullValue, c: NonNullValue) => (n(a) < n(c) ? -1 : n(a) > n(c) ? 1 : 0);

export const functions: Readonly<Record<string, Fn>> = {
  // int2 / int4 (numbers), int8 (bigints), float8
  int2pl: (a, c) => int2(n(a) + n(c)),
  int2mi: (a, c) => int2(n(a) - n(c)),
  int2mul: (a, c) => int2(n(a) * n(c)),
  int2div: (a, c) => int2(smallIntDiv(n(a), n(c))),
  int2mod: (a, c) => smallIntMod(n(a), n(c)),
  int2um: (a) => int2(-n(a) || 0),
  int2abs: (a) => int2(Math.abs(n(a))),
  int4pl: (a, c) => int4(n(a) + n(c)),
  int4mi: (a, c) => int4(n(a) - n(c)),
  int4mul: (a, c) => int4(n(a) * n(c)),
  int4div: (a, c) => int4(smallIntDiv(n(a), n(c))),
  int4mod: (a, c) => smallIntMod(n(a), n(c)),
  int4um: (a) => int4(-n(a) || 0),
  int4abs: (a) => int4(Math.abs(n(a))),
  int8pl: (a, c) => int8(b(a) + b(c)),
  int8mi: (a, c) => int8(b(a) - b(c)),
  int8mul: (a, c) => int8(b(a) * b(c)),
  int8div: (a, c) => {
    if (b(c) === 0n) throw divisionByZero();
    return int8(b(a) / b(c));
  },
  int8mod: (a, c) => {
    if (b(c) === 0n) throw divisionByZero();
    return b(c) === -1n ? 0n : b(a) % b(c);
  },
  int8um: (a) => int8(-b(a)),
  int8abs: (a) => int8(b(a) < 0n ? -b(a) : b(a)),
  float8pl: (a, c) => float8(n(a) + n(c), n(a), n(c)),
  float8mi: (a, c) => float8(n(a) - n(c), n(a), n(c)),
  float8mul: (a, c) => float8(n(a) * n(c), n(a), n(c), true),
  float8div: (a, c) => {
    if (n(c) === 0 && !Number.isNaN(n(a))) throw divisionByZero();
    return float8(n(a) / n(c), n(a), n(c) === 0 ? 1 : n(c), true);
  },
  float8um: (a) => -n(a),
  float8abs: (a) => Math.abs(n(a)),
  floor: (a) => Math.floor(n(a)),
  ceil: (a) => Math.ceil(n(a)),
  dround: (a) => rint(n(a)),
  dtrunc: (a) => Math.trunc(n(a)),
  dsqrt: (a) => {
    if (n(a) < 0) throw new SqlError(SqlState.invalidArgumentForPowerFunction, 'cannot take square root of a negative number');
    return Math.sqrt(n(a));
  },
  ...comparisons('int', numberCmp),
  ...comparisons('int8', (a, c) => (b(a) < b(c) ? -1 : b(a) > b(c) ? 1 : 0)),
  ...comparisons('float8', (a, c) => float8Cmp(n(a), n(c))),
  ...comparisons('numeric', (a, c) => numericCmp(s(a), s(c))),
  numericpl: (a, c) => numericAdd(s(a), s(c)),
  numericmi: (a, c) => numericSub(s(a), s(c)),
  numericmul: (a, c) => numericMul(s(a), s(c)),
  numericum: (a) => numericNeg(s(a)),
  numericabs: (a) => numericAbs(s(a)),
  ...comparisons('bool', (a, c) => Number(a) - Number(c)),
  texteq: (a, c) => a === c,
  textne: (a, c) => a !== c,
  // text
  textcat: (a, c) => s(a) + s(c),
  lower: (a) => asciiOnly(s(a), 'lower()').toLowerCase(),
  upper: (a) => asciiOnly(s(a), 'upper()').toUpperCase(),
  length: (a) => charLength(s(a)),
  octet_length: (a) => Buffer.byteLength(s(a)),
  substr2: (a, start) => substr(s(a), n(start)),
  substr3: (a, start, count) => substr(s(a), n(start), n(count)),
  left: (a, k) => left(s(a), n(k)),
  right: (a, k) => right(s(a), n(k)),
  btrim1: (a) => trimChars(s(a), ' ', true, true),
  ltrim1: (a) => trimChars(s(a), ' ', true, false),
  rtrim1: (a) => trimChars(s(a), ' ', false, true),
  btrim2: (a, set) => trimChars(s(a), s(set), true, true),
  ltrim2: (a, set) => trimChars(s(a), s(set), true, false),
  rtrim2: (a, set) => trimChars(s(a), s(set), false, true),
  replace: (a, from, to) => (s(from) === '' ? s(a) : s(a).split(s(from)).join(s(to))),
  strpos: (a, sub) => strpos(s(a), s(sub)),
  starts_with: (a, prefix) => s(a).startsWith(s(prefix)),
  like: (a, p) => like(s(a), s(p), false),
  notlike: (a, p) => !like(s(a), s(p), false),
  ilike: (a, p) => like(s(a), s(p), true),
  notilike: (a, p) => !like(s(a), s(p), true),
  regex: (a, p) => regexMatch(s(a), s(p), false),
  notregex: (a, p) => !regexMatch(s(a), s(p), false),
  iregex: (a, p) => regexMatch(s(a), s(p), true),
  notiregex: (a, p) => !regexMatch(s(a), s(p), true),
  // jsonb (documents as Jsonb, see jsonb.ts)
  jsonb_object_field: (d, k) => jsonbField(d as unknown as Jsonb, s(k)) as unknown as NonNullValue | null,
  jsonb_array_element: (d, i) => jsonbField(d as unknown as Jsonb, n(i)) as unknown as NonNullValue | null,
  jsonb_object_field_text: (d, k) => jsonbText(jsonbField(d as unknown as Jsonb, s(k))),
  jsonb_array_element_text: (d, i) => jsonbText(jsonbField(d as unknown as Jsonb, n(i))),
  jsonb_exists: (d, k) => jsonbExists(d as unknown as Jsonb, s(k)),
  date_bin: (stride, ts, origin) => dateBin(n(stride), exactMicros(n(ts) - n(origin)) + n(origin), n(origin)),
  timestamp_pl_micros: (ts, micros) => exactMicros(n(ts) + n(micros)),
  date_trunc: (unit, ts) => {
    // Before 1973 some zones were offset by seconds (local mean time, Monrovia): the store's job.
    if (n(ts) < 94694400000000) throw new NeedsStore('date_trunc before 1973');
    return dateTrunc(s(unit), n(ts));
  },
};

/** Casts between the compiled types, as PostgreSQL's cast functions (input functions from text). */
export function castFunction(from: ExprType, to: ExprType, parse: Record<ExprType, (text: string) => NonNullValue>): ((v: NonNullValue) => NonNullValue) | undefined {
  if (from === to) return (v) => v;
  if (to === 'text') return (v) => outputText(from, v);
  if (from === 'text') return (v) => parse[to](v as string);
  const small = from === 'int2' || from === 'int4';
  if (to === 'numeric') return small || from === 'int8' ? (v) => String(v) : undefined;
  if (from === 'numeric') {
    if (to === 'float8') return (v) => parseFloat8(v as string);
    if (to === 'int2' || to === 'int4' || to === 'int8') return (v) => numericToInteger(v as string, to);
    return undefined;
  }
  switch (to) {
    case 'int2':
      if (small) return (v) => int2(n(v));
      if (from === 'int8') return (v) => (b(v) < -32768n || b(v) > 32767n ? fail(outOfRange('smallint')) : Number(v));
      if (from === 'float8') return (v) => (Number.isNaN(n(v)) ? fail(outOfRange('smallint')) : int2(rint(n(v))));
      return undefined;
    case 'int4':
      if (small) return (v) => v;
      if (from === 'int8') return (v) => (b(v) < -2147483648n || b(v) > 2147483647n ? fail(outOfRange('integer')) : Number(v));
      if (from === 'float8') return (v) => (Number.isNaN(n(v)) ? fail(outOfRange('integer')) : int4(rint(n(v))) || 0);
      if (from === 'bool') return (v) => (v ? 1 : 0);
      return undefined;
    case 'int8':
      if (small) return (v) => BigInt(n(v));
      if (from === 'float8') {
        return (v) => {
          const r = rint(n(v));
          if (Number.isNaN(r) || r < -9223372036854775808 || r >= 9223372036854775808) throw outOfRange('bigint');
          return BigInt(r);
        };
      }
      return undefined;
    case 'float8':
      if (small) return (v) => v;
      if (from === 'int8') return (v) => Number(v);
      return undefined;
    case 'bool':
      if (from === 'int4') return (v) => n(v) !== 0;
      return undefined;
  }
  return undefined;
}

/** Microseconds a double holds exactly (2^53, about 285 years from 1970); beyond, the store computes. */
function exactMicros(v: number): number {
  if (Math.abs(v) > 2 ** 53) throw new NeedsStore('a timestamp far from 1970');
  return v;
}

function fail(err: Error): never {
  throw err;
}
