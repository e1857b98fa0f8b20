/**
 * Count-min sketch (PipelineDB's freq_agg / freq / freq_norm / freq_total /
 * freq_add / freq_merge_agg).
 *
 * depth rows of width counters; a value adds its weight to one counter per
 * row, at (h1 + i * h2) mod width with h1, h2 the first two 32-bit words
 * of the md5 of its canonical bytes (sqlHash), which the SQL function freq
 * computes alike. freq() is the minimum
 * over the rows, so it never underestimates, and overestimates by at most
 * eps * total with probability p. PipelineDB's defaults: eps = 0.002,
 * p = 0.995, so width = ceil(e / eps) = 1360 and depth = ceil(ln(1 / (1 - p))) = 6.
 *
 * Counters are kept sparse (a Map) while few are non-zero, then as a dense
 * Uint32Array that turns into a Float64Array if a counter passes 2^32 - 1.
 * Counters are exact integers either way, so merging (adding counters) is exact.
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, invalidParameter, SketchKind } from './codec.ts';
import { toWeight } from './common.ts';
import { sqlHash } from './hash.ts';

export const CMS_DEFAULT_EPS = 0.002;
export const CMS_DEFAULT_P = 0.995;
/** Largest width * depth accepted (64 Mi counters). */
const MAX_COUNTERS = 1 << 26;

export interface CountMinParams {
  /** Relative error bound (0 < eps < 1, default 0.002). */
  eps?: number;
  /** Confidence that the bound holds (0 < p < 1, default 0.995). */
  p?: number;
}

export class CountMinSketch {
  readonly width: number;
  readonly depth: number;
  private total = 0;
  private sparse: Map<number, number> | null = new Map();
  private dense: Uint32Array | Float64Array | null = null;

  private constructor(width: number, depth: number) {
    this.width = width;
    this.depth = depth;
  }

  static create(params: CountMinParams = {}): CountMinSketch {
    const eps = params.eps ?? CMS_DEFAULT_EPS;
    const p = params.p ?? CMS_DEFAULT_P;
    if (!(eps > 0 && eps < 1)) throw invalidParameter('eps must be between 0 and 1');
    if (!(p > 0 && p < 1)) throw invalidParameter('p must be between 0 and 1');
    const width = Math.ceil(Math.E / eps);
    const depth = Math.ceil(Math.log(1 / (1 - p)));
    return CountMinSketch.withDimensions(width, depth);
  }

  static withDimensions(width: number, depth: number): CountMinSketch {
    if (!Number.isInteger(width) || !Number.isInteger(depth) || width < 1 || depth < 1 || depth > 64 || width * depth > MAX_COUNTERS) {
      throw invalidParameter('count-min sketch dimensions are out of range');
    }
    return new CountMinSketch(width, depth);
  }

  /** Adds a value with a weight (freq_add); NULL values are ignored. */
  add(value: Value, weight: number = 1): this {
    if (value === null) return this;
    if (weight !== 1) weight = toWeight(weight);
    if (weight === 0) return this;
    const h = sqlHash(value);
    const a = h[0];
    const b = h[1];
    const width = this.width;
    this.total += weight;
    for (let i = 0; i < this.depth; i++) this.bump(i * width + ((a + i * b) % width), weight);
    return this;
  }

  private bump(index: number, weight: number): void {
    const dense = this.dense;
    if (dense !== null) {
      const v = dense[index] + weight;
      if (v > 0xffffffff && dense instanceof Uint32Array) {
        this.dense = Float64Array.from(dense);
        this.dense[index] = v;
      } else dense[index] = v;
      return;
    }
    const sparse = this.sparse!;
    sparse.set(index, (sparse.get(index) ?? 0) + weight);
    if (sparse.size > this.maxSparse()) this.toDense();
  }

  /** A Map entry costs about 30 to 60 bytes against 4 for a dense counter. */
  private maxSparse(): number {
    return Math.floor((this.width * this.depth) / 16);
  }

  private toDense(): void {
    let big = false;
    for (const v of this.sparse!.values()) if (v > 0xffffffff) big = true;
    const dense = big ? new Float64Array(this.width * this.depth) : new Uint32Array(this.width * this.depth);
    for (const [i, v] of this.sparse!) dense[i] = v;
    this.dense = dense;
    this.sparse = null;
  }

  private counter(index: number): number {
    return this.dense !== null ? this.dense[index] : (this.sparse!.get(index) ?? 0);
  }

  /** Estimated number of times `value` was added (freq); never less than the truth. */
  frequency(value: Value): number {
    if (value === null) return 0;
    const h = sqlHash(value);
    const a = h[0];
    const b = h[1];
    const width = this.width;
    let min = Infinity;
    for (let i = 0; i < this.depth; i++) {
      const c = this.counter(i * width + ((a + i * b) % width));
      if (c < min) min = c;
    }
    return min;
  }

  /** frequency / total (freq_norm); 0 for an empty sketch. */
  normalizedFrequency(value: Value): number {
    return this.total === 0 ? 0 : this.frequency(value) / this.total;
  }

  /** Total weight added (freq_total). */
  totalCount(): number {
    return this.total;
  }

  /** Adds the counters of `other` (freq_merge_agg); both must have the same dimensions. */
  merge(other: CountMinSketch): this {
    if (other.width !== this.width || other.depth !== this.depth) {
      throw invalidParameter('cannot merge count-min sketches of different dimensions');
    }
    if (other === this) return this.merge(other.clone());
    this.total += other.total;
    if (other.dense !== null) {
      if (this.dense === null) this.toDense();
      let mine = this.dense!;
      const theirs = other.dense;
      if (mine instanceof Uint32Array) {
        for (let i = 0; i < theirs.length; i++) {
          if (mine[i] + theirs[i] > 0xffffffff) {
            mine = this.dense = Float64Array.from(mine);
            break;
          }
        }
      }
      for (let i = 0; i < theirs.length; i++) mine[i] += theirs[i];
    } else {
      for (const [i, v] of other.sparse!) this.bump(i, v);
    }
    return this;
  }

  clone(): CountMinSketch {
    const copy = new CountMinSketch(this.width, this.depth);
    copy.total = this.total;
    copy.sparse = this.sparse && new Map(this.sparse);
    copy.dense = this.dense && this.dense.slice();
    return copy;
  }

  /** Number of non-zero counters. */
  private nonZero(): number {
    if (this.dense === null) {
      let n = 0;
      for (const v of this.sparse!.values()) if (v !== 0) n++;
      return n;
    }
    let n = 0;
    for (let i = 0; i < this.dense.length; i++) if (this.dense[i] !== 0) n++;
    return n;
  }

  /**
   * Format 2 (what freq / freq_total read in SQL), integers big-endian: 0
   * version (2), 1 kind, 2 width (u32), 6 depth (u32), 10 total (u64), 18
   * encoding (u8): 0 sparse: 19 count n (u32), 23 n (index u32, counter u64)
   * pairs by ascending index; 1 dense: 19 width * depth counters (u64), row
   * after row. The encoding depends only on the counters. Format 1 hashed
   * with MurmurHash3 and is not read.
   */
  serialize(): Uint8Array {
    const size = this.width * this.depth;
    const nonZero = this.nonZero();
    const sparse = nonZero * 12 < size * 8;
    const w = new ByteWriter(32 + (sparse ? nonZero * 12 : size * 8));
    w.header(SketchKind.countMin, 2).u32be(this.width).u32be(this.depth).u64be(this.total);
    if (sparse) {
      w.u8(0).u32be(nonZero);
      const indexes: number[] = [];
      if (this.dense === null) {
        for (const [i, v] of this.sparse!) if (v !== 0) indexes.push(i);
        indexes.sort((x, y) => x - y);
      } else {
        for (let i = 0; i < this.dense.length; i++) if (this.dense[i] !== 0) indexes.push(i);
      }
      for (const i of indexes) w.u32be(i).u64be(this.counter(i));
    } else {
      w.u8(1);
      for (let i = 0; i < size; i++) w.u64be(this.counter(i));
    }
    return w.finish();
  }

  static deserialize(bytes: Uint8Array): CountMinSketch {
    const r = new ByteReader(bytes, 'cms');
    if (r.header(SketchKind.countMin, 2) !== 2) throw corrupt('cms');
    const width = r.u32be();
    const depth = r.u32be();
    if (width < 1 || depth < 1 || depth > 64 || width * depth > MAX_COUNTERS) throw corrupt('cms');
    const cms = new CountMinSketch(width, depth);
    cms.total = r.u64be();
    const size = width * depth;
    const encoding = r.u8();
    if (encoding === 0) {
      const n = r.u32be();
      if (n > size) throw corrupt('cms');
      let index = -1;
      for (let k = 0; k < n; k++) {
        const next = r.u32be();
        const v = r.u64be();
        if (next <= index || next >= size || v === 0) throw corrupt('cms');
        index = next;
        cms.bump(index, v);
      }
    } else if (encoding === 1) {
      cms.toDense();
      let dense = cms.dense!;
      for (let i = 0; i < size; i++) {
        const v = r.u64be();
        if (v > 0xffffffff && dense instanceof Uint32Array) {
          cms.dense = dense = Float64Array.from(dense);
        }
        dense[i] = v;
      }
    } else {
      throw corrupt('cms');
    }
    r.end();
    return cms;
  }
}
