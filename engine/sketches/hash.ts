/**
 * MurmurHash3 x64 128-bit (Austin Appleby's reference algorithm) in 32-bit
 * halves, and the canonical byte form of engine values it hashes.
 *
 * Canonical bytes, so one SQL value always hashes the same whatever JS type
 * carries it:
 *   - strings (text, varchar, numeric text): UTF-8
 *   - numbers and bigints holding an integer of magnitude below 2^63: the
 *     integer's decimal text (int2/int4/int8 text form; 5, 5n and 5.0 agree)
 *   - other numbers: PostgreSQL's float8 text form (shortest round-trip
 *     digits, exponent form below 1e-4 and from 1e15), with -0 as 0 (as
 *     hashfloat8 does), NaN, Infinity, -Infinity
 *   - booleans: 't' / 'f'
 */
import { createHash } from 'node:crypto';
import type { NonNullValue } from '../values/index.ts';

/** The last hash computed: [h1 high, h1 low, h2 high, h2 low] as unsigned 32-bit words. */
export const HASH = new Uint32Array(4);

let RH = 0;
let RL = 0;

/** (RH, RL) = (ah, al) * (bh, bl) mod 2^64. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const high = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  RL = ((mid << 16) | (p00 & 0xffff)) >>> 0;
  RH = (high + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** In place: (RH, RL) = fmix64(RH, RL). */
function fmix64(): void {
  let h = RH;
  let l = (RL ^ (h >>> 1)) >>> 0;
  mul64(h, l, 0xff51afd7, 0xed558ccd);
  h = RH;
  l = (RL ^ (h >>> 1)) >>> 0;
  mul64(h, l, 0xc4ceb9fe, 0x1a85ec53);
  RL = (RL ^ (RH >>> 1)) >>> 0;
}

const C1H = 0x87c37b91;
const C1L = 0x114253d5;
const C2H = 0x4cf5ad43;
const C2L = 0x2745937f;

/**
 * MurmurHash3_x64_128 of key[0..len) with a 32-bit seed into `out` as
 * [h1 high, h1 low, h2 high, h2 low]. The reference's output bytes are h1
 * then h2, each little-endian.
 */
export function murmur3x64(key: Uint8Array, len: number, seed: number, out: Uint32Array = HASH): Uint32Array {
  let h1h = 0;
  let h1l = seed >>> 0;
  let h2h = 0;
  let h2l = seed >>> 0;
  const nblocks = len >>> 4;
  let k1h: number, k1l: number, k2h: number, k2l: number, t: number, sum: number;
  for (let i = 0; i < nblocks; i++) {
    const o = i << 4;
    k1l = (key[o] | (key[o + 1] << 8) | (key[o + 2] << 16) | (key[o + 3] << 24)) >>> 0;
    k1h = (key[o + 4] | (key[o + 5] << 8) | (key[o + 6] << 16) | (key[o + 7] << 24)) >>> 0;
    k2l = (key[o + 8] | (key[o + 9] << 8) | (key[o + 10] << 16) | (key[o + 11] << 24)) >>> 0;
    k2h = (key[o + 12] | (key[o + 13] << 8) | (key[o + 14] << 16) | (key[o + 15] << 24)) >>> 0;

    // k1 *= c1; k1 = rotl(k1, 31); k1 *= c2; h1 ^= k1
    mul64(k1h, k1l, C1H, C1L);
    k1h = ((RH << 31) | (RL >>> 1)) >>> 0;
    k1l = ((RL << 31) | (RH >>> 1)) >>> 0;
    mul64(k1h, k1l, C2H, C2L);
    h1h = (h1h ^ RH) >>> 0;
    h1l = (h1l ^ RL) >>> 0;
    // h1 = rotl(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729
    t = h1h;
    h1h = ((h1h << 27) | (h1l >>> 5)) >>> 0;
    h1l = ((h1l << 27) | (t >>> 5)) >>> 0;
    sum = h1l + h2l;
    h1h = (h1h + h2h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
    h1l = sum >>> 0;
    mul64(h1h, h1l, 0, 5);
    sum = RL + 0x52dce729;
    h1h = (RH + (sum > 0xffffffff ? 1 : 0)) >>> 0;
    h1l = sum >>> 0;

    // k2 *= c2; k2 = rotl(k2, 33); k2 *= c1; h2 ^= k2
    mul64(k2h, k2l, C2H, C2L);
    k2h = ((RL << 1) | (RH >>> 31)) >>> 0;
    k2l = ((RH << 1) | (RL >>> 31)) >>> 0;
    mul64(k2h, k2l, C1H, C1L);
    h2h = (h2h ^ RH) >>> 0;
    h2l = (h2l ^ RL) >>> 0;
    // h2 = rotl(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5
    t = h2h;
    h2h = ((h2h << 31) | (h2l >>> 1)) >>> 0;
    h2l = ((h2l << 31) | (t >>> 1)) >>> 0;
    sum = h2l + h1l;
    h2h = (h2h + h1h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
    h2l = sum >>> 0;
    mul64(h2h, h2l, 0, 5);
    sum = RL + 0x38495ab5;
    h2h = (RH + (sum > 0xffffffff ? 1 : 0)) >>> 0;
    h2l = sum >>> 0;
  }

  const tail = nblocks << 4;
  const rest = len & 15;
  if (rest > 8) {
    k2l = 0;
    k2h = 0;
    for (let j = rest - 1; j >= 8; j--) {
      const b = key[tail + j];
      if (j >= 12) k2h |= b << ((j - 12) * 8);
      else k2l |= b << ((j - 8) * 8);
    }
    mul64(k2h >>> 0, k2l >>> 0, C2H, C2L);
    k2h = ((RL << 1) | (RH >>> 31)) >>> 0;
    k2l = ((RH << 1) | (RL >>> 31)) >>> 0;
    mul64(k2h, k2l, C1H, C1L);
    h2h = (h2h ^ RH) >>> 0;
    h2l = (h2l ^ RL) >>> 0;
  }
  if (rest > 0) {
    k1l = 0;
    k1h = 0;
    const top = rest > 8 ? 8 : rest;
    for (let j = top - 1; j >= 0; j--) {
      const b = key[tail + j];
      if (j >= 4) k1h |= b << ((j - 4) * 8);
      else k1l |= b << (j * 8);
    }
    mul64(k1h >>> 0, k1l >>> 0, C1H, C1L);
    k1h = ((RH << 31) | (RL >>> 1)) >>> 0;
    k1l = ((RL << 31) | (RH >>> 1)) >>> 0;
    mul64(k1h, k1l, C2H, C2L);
    h1h = (h1h ^ RH) >>> 0;
    h1l = (h1l ^ RL) >>> 0;
  }

  // h1 ^= len; h2 ^= len; h1 += h2; h2 += h1
  h1l = (h1l ^ len) >>> 0;
  h2l = (h2l ^ len) >>> 0;
  sum = h1l + h2l;
  h1h = (h1h + h2h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
  h1l = sum >>> 0;
  sum = h2l + h1l;
  h2h = (h2h + h1h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
  h2l = sum >>> 0;
  // h1 = fmix64(h1); h2 = fmix64(h2)
  RH = h1h;
  RL = h1l;
  fmix64();
  h1h = RH;
  h1l = RL;
  RH = h2h;
  RL = h2l;
  fmix64();
  h2h = RH;
  h2l = RL;
  // h1 += h2; h2 += h1
  sum = h1l + h2l;
  h1h = (h1h + h2h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
  h1l = sum >>> 0;
  sum = h2l + h1l;
  h2h = (h2h + h1h + (sum > 0xffffffff ? 1 : 0)) >>> 0;
  h2l = sum >>> 0;
  out[0] = h1h;
  out[1] = h1l;
  out[2] = h2h;
  out[3] = h2l;
  return out;
}

/** Seed of every sketch hash. Stored states depend on it: never change it. */
export const SKETCH_SEED = 0;

let scratch = new Uint8Array(256);
const textEncoder = new TextEncoder();

function grow(n: number): void {
  let size = scratch.length * 2;
  while (size < n) size *= 2;
  scratch = new Uint8Array(size);
}

function writeAscii(text: string, at: number): number {
  const n = text.length;
  if (at + n > scratch.length) grow(at + n);
  for (let i = 0; i < n; i++) scratch[at + i] = text.charCodeAt(i);
  return at + n;
}

/** Writes the canonical bytes of `v` into the scratch buffer; returns their length. */
function canonicalInto(v: NonNullValue): number {
  switch (typeof v) {
    case 'string': {
      const n = v.length;
      if (n > scratch.length) grow(n);
      const buf = scratch;
      for (let i = 0; i < n; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) {
          if (n * 3 > buf.length) grow(n * 3);
          return textEncoder.encodeInto(v, scratch).written;
        }
        buf[i] = c;
      }
      return n;
    }
    case 'number':
      if (Number.isInteger(v)) {
        if (v < 2147483648 && v > -2147483648) return writeSmallInt(v);
        if (v < 9223372036854775808 && v >= -9223372036854775808) return writeAscii(BigInt(v).toString(), 0);
      }
      return writeAscii(pgFloatText(v), 0);
    case 'bigint':
      return writeAscii(v.toString(), 0);
    case 'boolean':
      scratch[0] = v ? 0x74 : 0x66;
      return 1;
  }
}

function writeSmallInt(v: number): number {
  // Also maps -0 to "0".
  let pos = 0;
  let n = v;
  if (n < 0) {
    scratch[pos++] = 0x2d;
    n = -n;
  }
  if (n === 0) {
    scratch[pos] = 0x30;
    return pos + 1;
  }
  let digits = 0;
  for (let m = n; m > 0; m = Math.floor(m / 10)) digits++;
  for (let i = pos + digits - 1; i >= pos; i--) {
    scratch[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return pos + digits;
}

/** PostgreSQL's float8out text of a double (extra_float_digits >= 1, the default since 12). */
export function pgFloatText(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const exp = v.toExponential(); // shortest round-trip digits, "d.ddde+X"
  const at = exp.indexOf('e');
  const x = Number(exp.slice(at + 1));
  if (x >= -4 && x < 15) return String(v);
  const digits = Math.abs(x) < 10 ? `0${Math.abs(x)}` : String(Math.abs(x));
  return `${exp.slice(0, at)}e${x < 0 ? '-' : '+'}${digits}`;
}

/**
 * The canonical text of a numeric value given as numeric_out text: numeric
 * keeps its display scale (5.0, 5.00), but SQL compares and hashes numerics
 * by value, so trailing fractional zeros go and -0 becomes 0. The engine
 * carries numeric and text alike as strings, so it applies this to values of
 * numeric columns before adding them to a sketch; the result is also what an
 * integer of the same value hashes as.
 */
export function normalizeNumericText(text: string): string {
  const dot = text.indexOf('.');
  if (dot < 0) return text === '-0' ? '0' : text;
  let end = text.length;
  while (end > dot + 1 && text.charCodeAt(end - 1) === 0x30) end--;
  if (end === dot + 1) end = dot;
  const out = text.slice(0, end);
  return out === '-0' ? '0' : out;
}

/** The canonical bytes of a value (a copy), for tests and tools. */
export function canonicalBytes(v: NonNullValue): Uint8Array {
  const length = canonicalInto(v);
  return scratch.slice(0, length);
}

/** Hashes a value's canonical bytes into HASH (and returns it). */
export function hashValue(v: NonNullValue): Uint32Array {
  // canonicalInto may replace the scratch buffer (long values): read it after.
  const length = canonicalInto(v);
  return murmur3x64(scratch, length, SKETCH_SEED, HASH);
}

/**
 * The hash of the sketches whose companion SQL functions rehash a value
 * (count-min's freq, bloom_contains): md5 of the value's canonical bytes (its
 * PostgreSQL text, UTF-8), h1 and h2 its first and second 32-bit big-endian
 * words. In SQL: `h := md5(v::text)`, `('x' || substr(h, 1, 8))::bit(32)::bigint`
 * and `('x' || substr(h, 9, 8))::bit(32)::bigint` (sluice.sketch_hash).
 * Stored states depend on it: never change it.
 */
export const SQL_HASH = new Float64Array(2);

export function sqlHash(v: NonNullValue): Float64Array {
  // canonicalInto may replace the scratch buffer: read it after.
  const length = canonicalInto(v);
  const digest = createHash('md5').update(scratch.subarray(0, length)).digest();
  SQL_HASH[0] = digest.readUInt32BE(0);
  SQL_HASH[1] = digest.readUInt32BE(4);
  return SQL_HASH;
}
