/**
 * HyperLogLog (PipelineDB's hll_agg / hll_cardinality / hll_union / hll_add,
 * and count(DISTINCT x) in continuous views).
 *
 * Each value's 64-bit hash (the first half of MurmurHash3 x64 128 over its
 * canonical bytes) picks a register with its top p bits; the register keeps
 * the largest rho = 1 + leading zeros of the remaining bits.
 *
 * Small states are sparse, as in HLL++: a hash table of (index, rho) pairs at
 * the sparse precision 25, so small cardinalities are counted almost exactly
 * (linear counting over 2^25 registers). Past 2^(p-3) entries the state
 * turns into 2^p dense 8-bit registers (serialized 6 bits each, as
 * postgresql-hll does). A sparse entry folds to exactly the dense register a
 * direct add would have set, so registers and the sparse/dense choice depend
 * only on the set of values added: merging sketches of two row sets gives
 * bit-for-bit the sketch of their union.
 *
 * Estimates use Ertl's improved raw estimator ("New cardinality estimation
 * algorithms for HyperLogLog sketches", 2017), accurate from 0 to 2^64
 * without empirical bias tables.
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, SketchKind } from './codec.ts';
import { intParam } from './common.ts';
import { hashValue } from './hash.ts';

export const HLL_DEFAULT_P = 14;
export const HLL_MIN_P = 4;
export const HLL_MAX_P = 18;
/** Precision of the sparse representation. */
const SP = 25;
/** Largest rho of a sparse entry: 64 - SP + 1. */
const SPARSE_MAX_RHO = 64 - SP + 1;

export interface HllParams {
  /** log2 of the number of dense registers (4..18, default 14: 16384 registers, ~0.81% standard error). */
  p?: number;
}

export class HyperLogLog {
  /** log2 of the number of dense registers. */
  p: number;
  /** Dense registers, once the state is dense. */
  private dense: Uint8Array | null = null;
  /** Sparse open-addressing table of entries (index25 << 6 | rho25); 0 = empty slot. */
  private table: Uint32Array | null;
  private count = 0;

  private constructor(p: number, form: 'sparse' | 'dense' | 'none') {
    this.p = p;
    this.table = form === 'sparse' ? new Uint32Array(8) : null;
    if (form === 'dense') this.dense = new Uint8Array(1 << p);
  }

  static create(params: HllParams = {}): HyperLogLog {
    return new HyperLogLog(intParam(params.p, HLL_DEFAULT_P, 'p', HLL_MIN_P, HLL_MAX_P), 'sparse');
  }

  /** Adds a value; NULL is ignored, as aggregates ignore NULL inputs. */
  add(value: Value): this {
    if (value === null) return this;
    const h = hashValue(value);
    this.addHash(h[0], h[1]);
    return this;
  }

  /** Adds a 64-bit hash given as its high and low 32-bit words. */
  addHash(hi: number, lo: number): void {
    const dense = this.dense;
    if (dense !== null) {
      const p = this.p;
      const w = ((hi << p) | (lo >>> (32 - p))) >>> 0;
      let rho: number;
      if (w !== 0) rho = Math.clz32(w) + 1;
      else {
        const w2 = (lo << p) >>> 0;
        rho = w2 !== 0 ? Math.clz32(w2) + 33 : 65 - p;
      }
      const idx = hi >>> (32 - p);
      if (rho > dense[idx]) dense[idx] = rho;
      return;
    }
    const r7 = hi & 0x7f;
    const rho = r7 !== 0 ? Math.clz32(r7) - 24 : lo !== 0 ? Math.clz32(lo) + 8 : SPARSE_MAX_RHO;
    this.sparseInsert(((hi >>> 7) << 6) | rho);
  }

  private sparseInsert(entry: number): void {
    const table = this.table!;
    const mask = table.length - 1;
    const idx = entry >>> 6;
    let slot = idx & mask;
    for (;;) {
      const e = table[slot];
      if (e === 0) break;
      if (e >>> 6 === idx) {
        if (entry > e) table[slot] = entry;
        return;
      }
      slot = (slot + 1) & mask;
    }
    table[slot] = entry;
    this.count++;
    if (this.count > this.maxSparse()) this.toDense();
    else if (this.count * 2 > table.length) this.resize(table.length * 2);
  }

  private maxSparse(): number {
    return 1 << (this.p - 3);
  }

  private resize(capacity: number): void {
    const old = this.table!;
    const table = new Uint32Array(capacity);
    const mask = capacity - 1;
    for (let i = 0; i < old.length; i++) {
      const e = old[i];
      if (e === 0) continue;
      let slot = (e >>> 6) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = e;
    }
    this.table = table;
  }

  private toDense(): void {
    const dense = new Uint8Array(1 << this.p);
    foldEntries(this.table!, this.p, dense);
    this.dense = dense;
    this.table = null;
    this.count = 0;
  }

  /** True while the state is the sparse (small cardinality) representation. */
  get isSparse(): boolean {
    return this.dense === null;
  }

  /** Lowers the precision to p, exactly as if every value had been added at p. */
  private reduceTo(p: number): void {
    if (p >= this.p) return;
    if (this.dense === null) {
      this.p = p;
      if (this.count > this.maxSparse()) this.toDense();
      return;
    }
    const old = this.dense;
    const d = this.p - p;
    const dense = new Uint8Array(1 << p);
    const lowMask = (1 << d) - 1;
    for (let i = 0; i < old.length; i++) {
      const r = old[i];
      if (r === 0) continue;
      const low = i & lowMask;
      const rho = low !== 0 ? Math.clz32(low) - (32 - d) + 1 : d + r;
      const j = i >>> d;
      if (rho > dense[j]) dense[j] = rho;
    }
    this.dense = dense;
    this.p = p;
  }

  /**
   * Adds every value of `other` into this sketch (hll_union). Sketches of
   * different precisions merge at the lower one.
   */
  merge(other: HyperLogLog): this {
    if (other.p < this.p) this.reduceTo(other.p);
    const otherDense = other.dense;
    if (otherDense === null) {
      const entries = other.table!;
      if (this.dense !== null) {
        foldEntries(entries, this.p, this.dense);
      } else {
        for (let i = 0; i < entries.length; i++) {
          if (entries[i] === 0) continue;
          if (this.dense !== null) {
            // Turned dense midway: folding is idempotent, so fold them all.
            foldEntries(entries, this.p, this.dense);
            break;
          }
          this.sparseInsert(entries[i]);
        }
      }
      return this;
    }
    if (this.dense === null) this.toDense();
    const dense = this.dense!;
    if (other.p === this.p) {
      for (let i = 0; i < dense.length; i++) if (otherDense[i] > dense[i]) dense[i] = otherDense[i];
    } else {
      const reduced = other.clone();
      reduced.reduceTo(this.p);
      return this.merge(reduced);
    }
    return this;
  }

  clone(): HyperLogLog {
    const copy = new HyperLogLog(this.p, 'none');
    copy.dense = this.dense && this.dense.slice();
    copy.table = this.table && this.table.slice();
    copy.count = this.count;
    return copy;
  }

  /** Estimated number of distinct values added (hll_cardinality). */
  cardinality(): number {
    return Math.round(this.estimate());
  }

  /** The unrounded estimate. */
  estimate(): number {
    if (this.dense !== null) {
      const q = 64 - this.p;
      const histogram = new Float64Array(q + 2);
      const dense = this.dense;
      for (let i = 0; i < dense.length; i++) histogram[dense[i]]++;
      return ertlEstimate(histogram, dense.length, q);
    }
    const q = 64 - SP;
    const histogram = new Float64Array(q + 2);
    const table = this.table!;
    for (let i = 0; i < table.length; i++) if (table[i] !== 0) histogram[table[i] & 0x3f]++;
    histogram[0] = 2 ** SP - this.count;
    return ertlEstimate(histogram, 2 ** SP, q);
  }

  /** The dense registers this state stands for (a copy; sparse entries folded). */
  registers(): Uint8Array {
    if (this.dense !== null) return this.dense.slice();
    const dense = new Uint8Array(1 << this.p);
    foldEntries(this.table!, this.p, dense);
    return dense;
  }

  /**
   * Format 2 (what hll_cardinality / hll_union read in SQL): 0 version (2),
   * 1 kind, 2 p (u8), 3 encoding (u8: 0 sparse, 1 dense); sparse: 4 entry
   * count (u32 big-endian), 8 the entries (index25 << 6 | rho) ascending, u32
   * big-endian each; dense: 4 the 2^p registers, one byte each. Format 1
   * (varint deltas, 6-bit packed registers) is still read.
   */
  serialize(): Uint8Array {
    const w = new ByteWriter(this.dense ? 8 + this.dense.length : 16 + this.count * 4);
    w.header(SketchKind.hll, 2).u8(this.p);
    if (this.dense === null) {
      w.u8(0).u32be(this.count);
      const sorted = sortedEntries(this.table!, this.count);
      for (let i = 0; i < sorted.length; i++) w.u32be(sorted[i]);
    } else {
      w.u8(1).bytes(this.dense);
    }
    return w.finish();
  }

  static deserialize(bytes: Uint8Array): HyperLogLog {
    const r = new ByteReader(bytes, 'hll');
    const version = r.header(SketchKind.hll, 2);
    const p = r.u8();
    if (p < HLL_MIN_P || p > HLL_MAX_P) throw corrupt('hll');
    const encoding = r.u8();
    let hll: HyperLogLog;
    const maxRho = 65 - p;
    if (encoding === 0) {
      hll = new HyperLogLog(p, 'sparse');
      const n = version === 1 ? r.count(1 << (p - 3)) : r.u32be();
      if (n > 1 << (p - 3)) throw corrupt('hll');
      let entry = 0;
      for (let i = 0; i < n; i++) {
        let delta: number;
        if (version === 1) {
          delta = r.varuint();
          entry += delta;
        } else {
          const next = r.u32be();
          delta = next - entry;
          entry = next;
        }
        if ((delta <= 0 && i > 0) || entry >= 2 ** 31 || (entry & 0x3f) === 0 || (entry & 0x3f) > SPARSE_MAX_RHO) {
          throw corrupt('hll');
        }
        hll.sparseInsert(entry);
      }
      if (hll.count !== n || hll.dense !== null) throw corrupt('hll');
    } else if (encoding === 1) {
      hll = new HyperLogLog(p, 'dense');
      const dense = hll.dense!;
      if (version === 2) {
        dense.set(r.bytes(dense.length));
        for (let i = 0; i < dense.length; i++) if (dense[i] > maxRho) throw corrupt('hll');
      } else {
        const packed = r.bytes((dense.length * 6) >>> 3);
        for (let i = 0, o = 0; i < dense.length; i += 4, o += 3) {
          const bits = packed[o] | (packed[o + 1] << 8) | (packed[o + 2] << 16);
          dense[i] = bits & 0x3f;
          dense[i + 1] = (bits >>> 6) & 0x3f;
          dense[i + 2] = (bits >>> 12) & 0x3f;
          dense[i + 3] = bits >>> 18;
          if (dense[i] > maxRho || dense[i + 1] > maxRho || dense[i + 2] > maxRho || dense[i + 3] > maxRho) {
            throw corrupt('hll');
          }
        }
      }
    } else {
      throw corrupt('hll');
    }
    r.end();
    return hll;
  }
}

/** Folds sparse entries (precision 25) into dense registers of precision p. */
function foldEntries(entries: Uint32Array, p: number, dense: Uint8Array): void {
  const d = SP - p;
  const lowMask = (1 << d) - 1;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e === 0) continue;
    const idx = e >>> 6;
    const low = idx & lowMask;
    const rho = low !== 0 ? Math.clz32(low) - (32 - d) + 1 : d + (e & 0x3f);
    const j = idx >>> d;
    if (rho > dense[j]) dense[j] = rho;
  }
}

function sortedEntries(table: Uint32Array, count: number): Uint32Array {
  const out = new Uint32Array(count);
  let n = 0;
  for (let i = 0; i < table.length; i++) if (table[i] !== 0) out[n++] = table[i];
  return out.sort();
}

/**
 * Ertl's improved raw estimator from the register histogram c (c[k] =
 * registers holding k, k = 0..q+1) of m registers whose values are at most q + 1.
 */
export function ertlEstimate(c: Float64Array, m: number, q: number): number {
  let z = m * tau((m - c[q + 1]) / m);
  for (let k = q; k >= 1; k--) z = 0.5 * (z + c[k]);
  z += m * sigma(c[0] / m);
  return (m * m) / (2 * Math.LN2 * z);
}

function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  for (;;) {
    x *= x;
    const prev = z;
    z += x * y;
    y += y;
    if (z === prev) return z;
  }
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  for (;;) {
    x = Math.sqrt(x);
    const prev = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
    if (z === prev) return z / 3;
  }
}
