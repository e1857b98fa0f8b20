/**
 * Bloom filter (PipelineDB's bloom_agg / bloom_contains / bloom_cardinality /
 * bloom_union_agg / bloom_intersection_agg).
 *
 * Sized as PipelineDB does from a false-positive rate p and an expected item
 * count n (defaults 0.02 and 16384): m = ceil(-n ln p / ln(2)^2) bits (rounded
 * up to a multiple of 32) and k = round(m / n * ln 2) hash functions. Bit i of
 * a value is (h1 + i * h2) mod m, h1 and h2 the first two 32-bit words of
 * the md5 of its canonical bytes (sqlHash), which the SQL function
 * bloom_contains computes alike.
 *
 * The set bits are kept in a small hash set while few, then as a bit array;
 * either way the same values give the same bits, so unions and intersections
 * are exact.
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, invalidParameter, SketchKind } from './codec.ts';
import { sqlHash } from './hash.ts';

export const BLOOM_DEFAULT_P = 0.02;
export const BLOOM_DEFAULT_N = 16384;
/** Largest filter accepted: 2^31 bits (256 MiB). */
const MAX_BITS = 2 ** 31;

export interface BloomParams {
  /** Target false-positive rate (0 < p < 1, default 0.02). */
  p?: number;
  /** Expected number of distinct items (default 16384). */
  n?: number;
}

export class BloomFilter {
  /** Number of bits. */
  readonly m: number;
  /** Number of hash functions. */
  readonly k: number;
  /** Sparse set of (bit + 1), open addressing, 0 = empty. */
  private table: Uint32Array | null = new Uint32Array(16);
  private tableCount = 0;
  private words: Uint32Array | null = null;

  private constructor(m: number, k: number) {
    this.m = m;
    this.k = k;
  }

  static create(params: BloomParams = {}): BloomFilter {
    const p = params.p ?? BLOOM_DEFAULT_P;
    const n = params.n ?? BLOOM_DEFAULT_N;
    if (!(p > 0 && p < 1)) throw invalidParameter('p must be between 0 and 1');
    if (!(Number.isInteger(n) && n > 0)) throw invalidParameter('n must be a positive integer');
    const bits = Math.ceil((-n * Math.log(p)) / (Math.LN2 * Math.LN2));
    const m = Math.ceil(bits / 32) * 32;
    if (m > MAX_BITS) throw invalidParameter('bloom filter would be too large');
    const k = Math.max(1, Math.round((m / n) * Math.LN2));
    return BloomFilter.withDimensions(m, Math.min(k, 64));
  }

  /** A filter of m bits (a multiple of 32) and k hash functions. */
  static withDimensions(m: number, k: number): BloomFilter {
    if (!Number.isInteger(m) || m < 32 || m % 32 !== 0 || m > MAX_BITS || !Number.isInteger(k) || k < 1 || k > 64) {
      throw invalidParameter('bloom filter dimensions are out of range');
    }
    return new BloomFilter(m, k);
  }

  /** Adds a value; NULL is ignored. */
  add(value: Value): this {
    if (value === null) return this;
    const h = sqlHash(value);
    const a = h[0];
    const b = h[1];
    const m = this.m;
    for (let i = 0; i < this.k; i++) this.setBit((a + i * b) % m);
    return this;
  }

  private setBit(bit: number): void {
    const words = this.words;
    if (words !== null) {
      words[bit >>> 5] |= 1 << (bit & 31);
      return;
    }
    const table = this.table!;
    const mask = table.length - 1;
    const key = bit + 1;
    let slot = mix(key) & mask;
    for (;;) {
      const e = table[slot];
      if (e === key) return;
      if (e === 0) break;
      slot = (slot + 1) & mask;
    }
    table[slot] = key;
    this.tableCount++;
    if (this.tableCount > this.m / 128) this.toDense();
    else if (this.tableCount * 2 > table.length) this.rehash(table.length * 2);
  }

  private rehash(capacity: number): void {
    const old = this.table!;
    const table = new Uint32Array(capacity);
    const mask = capacity - 1;
    for (const key of old) {
      if (key === 0) continue;
      let slot = mix(key) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = key;
    }
    this.table = table;
  }

  private toDense(): void {
    const words = new Uint32Array(this.m / 32);
    for (const key of this.table!) {
      if (key !== 0) words[(key - 1) >>> 5] |= 1 << ((key - 1) & 31);
    }
    this.words = words;
    this.table = null;
    this.tableCount = 0;
  }

  private hasBit(bit: number): boolean {
    if (this.words !== null) return (this.words[bit >>> 5] & (1 << (bit & 31))) !== 0;
    const table = this.table!;
    const mask = table.length - 1;
    const key = bit + 1;
    let slot = mix(key) & mask;
    for (;;) {
      const e = table[slot];
      if (e === key) return true;
      if (e === 0) return false;
      slot = (slot + 1) & mask;
    }
  }

  /** False if the value was certainly never added (bloom_contains). */
  contains(value: Value): boolean {
    if (value === null) return false;
    const h = sqlHash(value);
    const a = h[0];
    const b = h[1];
    const m = this.m;
    for (let i = 0; i < this.k; i++) if (!this.hasBit((a + i * b) % m)) return false;
    return true;
  }

  /** The set bits, ascending. */
  private setBits(): Uint32Array {
    if (this.words === null) {
      const out = new Uint32Array(this.tableCount);
      let n = 0;
      for (const key of this.table!) if (key !== 0) out[n++] = key - 1;
      return out.sort();
    }
    const out: number[] = [];
    const words = this.words;
    for (let w = 0; w < words.length; w++) {
      let word = words[w];
      while (word !== 0) {
        const low = word & -word;
        out.push(w * 32 + 31 - Math.clz32(low));
        word ^= low;
      }
    }
    return Uint32Array.from(out);
  }

  /** Number of set bits. */
  bitCount(): number {
    if (this.words === null) return this.tableCount;
    let n = 0;
    for (const word of this.words) n += popcount(word);
    return n;
  }

  /** Estimated number of distinct values added, from the set bits (bloom_cardinality). */
  cardinality(): number {
    const x = this.bitCount();
    if (x === 0) return 0;
    const m = this.m;
    const fill = x >= m ? (m - 0.5) / m : x / m;
    return Math.round((-m / this.k) * Math.log(1 - fill));
  }

  private checkCompatible(other: BloomFilter): void {
    if (other.m !== this.m || other.k !== this.k) {
      throw invalidParameter('cannot combine bloom filters of different sizes');
    }
  }

  /** This filter becomes the union (bitwise OR) with `other` (bloom_union_agg). */
  union(other: BloomFilter): this {
    this.checkCompatible(other);
    if (other.words !== null) {
      if (this.words === null) this.toDense();
      const mine = this.words!;
      const theirs = other.words;
      for (let i = 0; i < mine.length; i++) mine[i] |= theirs[i];
    } else {
      for (const key of other.table!.slice()) if (key !== 0) this.setBit(key - 1);
    }
    return this;
  }

  /** merge = union. */
  merge(other: BloomFilter): this {
    return this.union(other);
  }

  /** This filter becomes the intersection (bitwise AND) with `other` (bloom_intersection_agg). */
  intersect(other: BloomFilter): this {
    this.checkCompatible(other);
    if (this.words !== null && other.words !== null) {
      const mine = this.words;
      const theirs = other.words;
      for (let i = 0; i < mine.length; i++) mine[i] &= theirs[i];
      return this;
    }
    const kept = (this.words === null ? this : other).setBits().filter((bit) => this.hasBit(bit) && other.hasBit(bit));
    this.words = null;
    this.table = new Uint32Array(16);
    this.tableCount = 0;
    for (const bit of kept) this.setBit(bit);
    return this;
  }

  clone(): BloomFilter {
    const copy = new BloomFilter(this.m, this.k);
    copy.table = this.table && this.table.slice();
    copy.tableCount = this.tableCount;
    copy.words = this.words && this.words.slice();
    return copy;
  }

  /**
   * Format 2 (what bloom_contains / bloom_cardinality read in SQL): 0 version
   * (2), 1 kind, 2 m (u32 big-endian), 6 k (u8), 7 encoding (u8): 0 sparse: 8
   * count n (u32 big-endian), 12 the n set bits ascending (u32 big-endian
   * each); 1 dense: 8 the m / 8 bytes of the bit array, bit b in byte b >> 3
   * at bit b & 7 from the least significant (PostgreSQL's get_bit(state, 64 + b)).
   * The encoding depends only on the bits. Format 1 hashed with MurmurHash3 and is not read.
   */
  serialize(): Uint8Array {
    const count = this.bitCount();
    const denseBytes = this.m / 8;
    const sparse = count * 4 < denseBytes;
    const w = new ByteWriter(16 + (sparse ? count * 4 : denseBytes));
    w.header(SketchKind.bloom, 2).u32be(this.m).u8(this.k);
    if (sparse) {
      w.u8(0).u32be(count);
      for (const bit of this.setBits()) w.u32be(bit);
    } else {
      w.u8(1);
      const words = this.words ?? this.denseCopy();
      for (const word of words) w.u32(word);
    }
    return w.finish();
  }

  private denseCopy(): Uint32Array {
    const words = new Uint32Array(this.m / 32);
    for (const bit of this.setBits()) words[bit >>> 5] |= 1 << (bit & 31);
    return words;
  }

  static deserialize(bytes: Uint8Array): BloomFilter {
    const r = new ByteReader(bytes, 'bloom');
    if (r.header(SketchKind.bloom, 2) !== 2) throw corrupt('bloom');
    const m = r.u32be();
    const k = r.u8();
    if (m < 32 || m % 32 !== 0 || m > MAX_BITS || k < 1 || k > 64) throw corrupt('bloom');
    const bf = new BloomFilter(m, k);
    const encoding = r.u8();
    if (encoding === 0) {
      const n = r.u32be();
      if (n > m) throw corrupt('bloom');
      let bit = -1;
      for (let i = 0; i < n; i++) {
        const next = r.u32be();
        if (next <= bit || next >= m) throw corrupt('bloom');
        bit = next;
        bf.setBit(bit);
      }
    } else if (encoding === 1) {
      bf.toDense();
      const words = bf.words!;
      for (let i = 0; i < words.length; i++) words[i] = r.u32();
    } else {
      throw corrupt('bloom');
    }
    r.end();
    return bf;
  }
}

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
