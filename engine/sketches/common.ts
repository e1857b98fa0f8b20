/** Value helpers shared by the sketches that keep values themselves (top-k, sets, keyed, first_values). */
import type { Value } from '../values/index.ts';
import { invalidParameter } from './codec.ts';

/**
 * A Map key under which equal SQL values meet: a bigint and a number holding
 * the same integer share one key, and -0/0 and NaN/NaN already do under the
 * Map's SameValueZero. Values of different SQL families (text '5' and 5) stay apart.
 */
export function valueKey(v: Value): unknown {
  if (typeof v === 'bigint') {
    return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  }
  if (typeof v === 'number' && (v > 9007199254740991 || v < -9007199254740991) && Number.isFinite(v)) {
    return BigInt(v);
  }
  return v;
}

function family(v: Value): number {
  switch (typeof v) {
    case 'boolean':
      return 0;
    case 'number':
    case 'bigint':
      return 1;
    case 'string':
      return 2;
    default:
      return 3; // NULL sorts last, as PostgreSQL's ASC NULLS LAST
  }
}

/**
 * PostgreSQL's ascending order: false < true; numbers by value with NaN
 * above every other number; strings by code point (the "C" collation's byte
 * order of UTF-8); NULL last. Values of different families (never in one
 * column) order by family so the order stays total.
 */
export function compareValues(a: Value, b: Value): number {
  const fa = family(a);
  const fb = family(b);
  if (fa !== fb) return fa - fb;
  switch (fa) {
    case 0:
      return a === b ? 0 : a ? 1 : -1;
    case 1: {
      const an = typeof a === 'number' && Number.isNaN(a);
      const bn = typeof b === 'number' && Number.isNaN(b);
      if (an || bn) return an === bn ? 0 : an ? 1 : -1;
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    }
    case 2:
      return compareCodePoints(a as string, b as string);
    default:
      return 0;
  }
}

/** Code point order of two strings (UTF-16 code unit order differs for U+E000..U+FFFF against surrogate pairs). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca !== cb) {
      // Surrogates (code points >= U+10000) sort above U+E000..U+FFFF.
      const ka = ca >= 0xd800 && ca <= 0xdfff ? ca + 0x2000 : ca >= 0xe000 ? ca - 0x800 : ca;
      const kb = cb >= 0xd800 && cb <= 0xdfff ? cb + 0x2000 : cb >= 0xe000 ? cb - 0x800 : cb;
      return ka - kb;
    }
  }
  return a.length - b.length;
}

/** A numeric argument (weight, timestamp) as a JS number. */
export function toNumber(v: Value, what: string): number {
  switch (typeof v) {
    case 'number':
      return v;
    case 'bigint':
      return Number(v);
    case 'string': {
      const n = Number(v.trim());
      if (v.trim() !== '' && !Number.isNaN(n)) return n;
      if (/^\s*nan\s*$/i.test(v)) return NaN;
      break;
    }
  }
  throw invalidParameter(`${what} must be a number`);
}

/** A non-negative integer weight (count) for sketches that keep counts. */
export function toWeight(v: Value | undefined, what = 'weight'): number {
  if (v === undefined) return 1;
  const n = toNumber(v, what);
  if (!Number.isSafeInteger(n) || n < 0) throw invalidParameter(`${what} must be a non-negative integer`);
  return n;
}

export function intParam(v: number | undefined, fallback: number, name: string, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw invalidParameter(`${name} must be an integer between ${min} and ${max}`);
  }
  return v;
}
