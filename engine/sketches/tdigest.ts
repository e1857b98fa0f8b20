/**
 * Merging t-digest (Dunning & Ertl, "Computing extremely accurate quantiles
 * using t-digests"), PipelineDB's dist_agg / dist_quantile / dist_cdf /
 * dist_add, and percentile_cont(q) WITHIN GROUP (ORDER BY x) in continuous views.
 *
 * Incoming values are buffered; a full buffer is sorted and merged with the
 * centroids in one pass under the k1 scale function
 * k(q) = compression / (2 pi) * asin(2q - 1): a centroid may grow while it
 * spans at most one unit of k. Quantile and CDF interpolation follow the
 * reference MergingDigest (singleton centroids are exact points; the ends
 * interpolate to the exact min and max).
 *
 * Non-finite values (NaN, +-Infinity) are ignored: they have no place on a
 * continuous distribution and would poison every interpolation.
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, invalidParameter, SketchKind } from './codec.ts';
import { toNumber } from './common.ts';
import { SqlError, SqlState } from '../errors.ts';
import { pgFloatText } from './hash.ts';

export const TDIGEST_DEFAULT_COMPRESSION = 200;
export const TDIGEST_MIN_COMPRESSION = 10;
export const TDIGEST_MAX_COMPRESSION = 10000;

export interface TDigestParams {
  /** Compression delta (10..10000, default 200): about delta/2 centroids are kept. */
  compression?: number;
}

export class TDigest {
  readonly compression: number;
  /** Centroid means (ascending) and weights; n of them are in use. */
  private means: Float64Array;
  private weights: Float64Array;
  private n = 0;
  /** Total weight of the centroids (not counting the buffer). */
  private merged = 0;
  /** Unit-weight values not yet merged. */
  private buffer: Float64Array;
  private buffered = 0;
  private readonly bufferLimit: number;
  private lo = Infinity;
  private hi = -Infinity;

  private constructor(compression: number) {
    this.compression = compression;
    this.means = new Float64Array(0);
    this.weights = new Float64Array(0);
    this.buffer = new Float64Array(16);
    this.bufferLimit = Math.max(64, Math.ceil(compression * 2));
  }

  static create(params: TDigestParams = {}): TDigest {
    const c = params.compression ?? TDIGEST_DEFAULT_COMPRESSION;
    if (!Number.isFinite(c) || c < TDIGEST_MIN_COMPRESSION || c > TDIGEST_MAX_COMPRESSION) {
      throw invalidParameter(`compression must be between ${TDIGEST_MIN_COMPRESSION} and ${TDIGEST_MAX_COMPRESSION}`);
    }
    return new TDigest(c);
  }

  /** Adds one value (dist_add); NULL and non-finite values are ignored. */
  add(value: Value): this {
    if (value === null) return this;
    const x = typeof value === 'number' ? value : toNumber(value, 'dist_agg value');
    if (!Number.isFinite(x)) return this;
    if (this.buffered === this.buffer.length) {
      if (this.buffered >= this.bufferLimit) this.flush();
      else {
        const grown = new Float64Array(Math.min(this.bufferLimit, this.buffer.length * 2));
        grown.set(this.buffer);
        this.buffer = grown;
      }
    }
    this.buffer[this.buffered++] = x;
    if (x < this.lo) this.lo = x;
    if (x > this.hi) this.hi = x;
    return this;
  }

  /** Adds a value with an integer or fractional weight (> 0). */
  addWeighted(x: number, weight: number): this {
    if (!Number.isFinite(x)) return this;
    if (!(weight > 0) || !Number.isFinite(weight)) throw invalidParameter('weight must be positive');
    this.flush();
    const one = new TDigest(this.compression);
    one.means = Float64Array.of(x);
    one.weights = Float64Array.of(weight);
    one.n = 1;
    one.merged = weight;
    one.lo = x;
    one.hi = x;
    return this.merge(one);
  }

  /** Total weight added (the number of values, for unit weights). */
  get count(): number {
    return this.merged + this.buffered;
  }

  get min(): number {
    return this.count === 0 ? NaN : this.lo;
  }

  get max(): number {
    return this.count === 0 ? NaN : this.hi;
  }

  /** Merges the buffer into the centroids. */
  private flush(): void {
    if (this.buffered === 0) return;
    const values = this.buffer.subarray(0, this.buffered).sort();
    this.compress(this.means, this.weights, this.n, values, null, values.length);
    this.buffered = 0;
  }

  /**
   * One merge pass over two ascending centroid lists (bWeights null = unit
   * weights) into new centroid arrays.
   */
  private compress(
    aMeans: Float64Array,
    aWeights: Float64Array,
    an: number,
    bMeans: Float64Array,
    bWeights: Float64Array | null,
    bn: number,
  ): void {
    let total = 0;
    for (let i = 0; i < an; i++) total += aWeights[i];
    if (bWeights === null) total += bn;
    else for (let i = 0; i < bn; i++) total += bWeights[i];

    const cap = Math.min(an + bn, Math.ceil(this.compression) + 8);
    let outMeans = new Float64Array(cap);
    let outWeights = new Float64Array(cap);
    const normalizer = this.compression / (2 * Math.PI);
    let count = 0;
    let soFar = 0; // weight of the closed centroids
    let limit = 0; // total weight the open centroid may reach (in cumulative weight)
    let curMean = 0;
    let curWeight = 0;
    let i = 0;
    let j = 0;
    while (i < an || j < bn) {
      let m: number;
      let w: number;
      if (j >= bn || (i < an && aMeans[i] <= bMeans[j])) {
        m = aMeans[i];
        w = aWeights[i];
        i++;
      } else {
        m = bMeans[j];
        w = bWeights === null ? 1 : bWeights[j];
        j++;
      }
      if (curWeight === 0) {
        curMean = m;
        curWeight = w;
        limit = total * qOfK(kOfQ(0, normalizer) + 1, normalizer);
        continue;
      }
      if (soFar + curWeight + w <= limit) {
        curWeight += w;
        curMean += ((m - curMean) * w) / curWeight;
      } else {
        if (count === outMeans.length) {
          const grownMeans = new Float64Array(count * 2);
          grownMeans.set(outMeans);
          outMeans = grownMeans;
          const grownWeights = new Float64Array(count * 2);
          grownWeights.set(outWeights);
          outWeights = grownWeights;
        }
        outMeans[count] = curMean;
        outWeights[count] = curWeight;
        count++;
        soFar += curWeight;
        limit = total * qOfK(kOfQ(soFar / total, normalizer) + 1, normalizer);
        curMean = m;
        curWeight = w;
      }
    }
    if (curWeight > 0) {
      if (count === outMeans.length) {
        const grownMeans = new Float64Array(count + 1);
        grownMeans.set(outMeans);
        outMeans = grownMeans;
        const grownWeights = new Float64Array(count + 1);
        grownWeights.set(outWeights);
        outWeights = grownWeights;
      }
      outMeans[count] = curMean;
      outWeights[count] = curWeight;
      count++;
    }
    this.means = count === outMeans.length ? outMeans : outMeans.slice(0, count);
    this.weights = count === outWeights.length ? outWeights : outWeights.slice(0, count);
    this.n = count;
    this.merged = total;
  }

  /** Adds every value of `other` into this digest. */
  merge(other: TDigest): this {
    if (other.count === 0) return this;
    if (other === this) return this.merge(this.clone());
    this.flush();
    let bMeans = other.means;
    let bWeights = other.weights;
    let bn = other.n;
    if (other.buffered > 0) {
      // Read the other digest's buffer without changing it.
      const copy = other.clone();
      copy.flush();
      bMeans = copy.means;
      bWeights = copy.weights;
      bn = copy.n;
    }
    this.compress(this.means, this.weights, this.n, bMeans, bWeights, bn);
    if (other.lo < this.lo) this.lo = other.lo;
    if (other.hi > this.hi) this.hi = other.hi;
    return this;
  }

  clone(): TDigest {
    const copy = new TDigest(this.compression);
    copy.means = this.means.slice(0, this.n);
    copy.weights = this.weights.slice(0, this.n);
    copy.n = this.n;
    copy.merged = this.merged;
    copy.buffer = this.buffer.slice();
    copy.buffered = this.buffered;
    copy.lo = this.lo;
    copy.hi = this.hi;
    return copy;
  }

  /** Number of centroids (after merging the buffer). */
  centroidCount(): number {
    this.flush();
    return this.n;
  }

  /** The value at quantile q in [0, 1] (dist_quantile); NULL (null) when empty. */
  quantile(q: number): number | null {
    if (!(q >= 0 && q <= 1)) throw invalidParameter('quantile must be between 0 and 1');
    this.flush();
    const n = this.n;
    if (n === 0) return null;
    const means = this.means;
    const weights = this.weights;
    const min = this.lo;
    const max = this.hi;
    if (n === 1) return means[0];
    const total = this.merged;
    const index = q * total;
    if (index < 1) return min;
    // Between the min and the first centroid's middle.
    if (weights[0] > 1 && index < weights[0] / 2) {
      return min + ((index - 1) / (weights[0] / 2 - 1)) * (means[0] - min);
    }
    if (index > total - 1) return max;
    if (weights[n - 1] > 1 && total - index <= weights[n - 1] / 2) {
      return max - ((total - index - 1) / (weights[n - 1] / 2 - 1)) * (max - means[n - 1]);
    }
    let soFar = weights[0] / 2;
    for (let i = 0; i < n - 1; i++) {
      const dw = (weights[i] + weights[i + 1]) / 2;
      if (soFar + dw > index) {
        let leftUnit = 0;
        if (weights[i] === 1) {
          if (index - soFar < 0.5) return means[i];
          leftUnit = 0.5;
        }
        let rightUnit = 0;
        if (weights[i + 1] === 1) {
          if (soFar + dw - index <= 0.5) return means[i + 1];
          rightUnit = 0.5;
        }
        const z1 = index - soFar - leftUnit;
        const z2 = soFar + dw - index - rightUnit;
        return weightedAverage(means[i], z2, means[i + 1], z1);
      }
      soFar += dw;
    }
    // Past the middle of the last centroid.
    const z1 = index - total - weights[n - 1] / 2;
    const z2 = weights[n - 1] / 2 - z1;
    return weightedAverage(means[n - 1], z1, max, z2);
  }

  /**
   * percentile_cont(q): PostgreSQL's linear interpolation between the order
   * statistics at position q * (n - 1), exact while every value is still its
   * own centroid (small groups), the digest's quantile(q) after that.
   */
  percentileCont(q: number): number | null {
    if (!(q >= 0 && q <= 1)) {
      throw new SqlError(SqlState.numericValueOutOfRange, `percentile value ${pgFloatText(q)} is not between 0 and 1`);
    }
    this.flush();
    const n = this.n;
    if (n === 0) return null;
    for (let i = 0; i < n; i++) if (this.weights[i] !== 1) return this.quantile(q);
    const pos = q * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    const a = this.means[lo];
    return lo === hi ? a : a + (pos - lo) * (this.means[hi] - a);
  }

  /**
   * percentile_disc(q): PostgreSQL's first value whose position in the sort
   * order is at least q (the ceil(q * n)-th, counting from 1), in ascending or
   * descending order. Exact while every value is still its own centroid
   * (small groups); after that the digest's quantile at q (1 - q when
   * descending), which may lie between two input values — callers round it to
   * the input type.
   */
  percentileDisc(q: number, descending = false): number | null {
    if (!(q >= 0 && q <= 1)) {
      throw new SqlError(SqlState.numericValueOutOfRange, `percentile value ${pgFloatText(q)} is not between 0 and 1`);
    }
    this.flush();
    const n = this.n;
    if (n === 0) return null;
    for (let i = 0; i < n; i++) if (this.weights[i] !== 1) return this.quantile(descending ? 1 - q : q);
    // PostgreSQL computes the row number in double precision, as here.
    const row = Math.max(Math.ceil(q * n), 1);
    return this.means[descending ? n - row : row - 1];
  }

  /** The fraction of values at or below x, counting values equal to x half (dist_cdf); null when empty. */
  cdf(x: number): number | null {
    if (Number.isNaN(x)) throw invalidParameter('dist_cdf value must not be NaN');
    this.flush();
    const n = this.n;
    if (n === 0) return null;
    const means = this.means;
    const weights = this.weights;
    const min = this.lo;
    const max = this.hi;
    const total = this.merged;
    if (x < min) return 0;
    if (x > max) return 1;
    if (n === 1) {
      const width = max - min;
      return width === 0 ? 0.5 : (x - min) / width;
    }
    if (x < means[0]) {
      if (means[0] - min > 0) {
        if (x === min) return 0.5 / total;
        return (1 + ((x - min) / (means[0] - min)) * (weights[0] / 2 - 1)) / total;
      }
      return 0;
    }
    if (x > means[n - 1]) {
      if (max - means[n - 1] > 0) {
        if (x === max) return 1 - 0.5 / total;
        const dq = (1 + ((max - x) / (max - means[n - 1])) * (weights[n - 1] / 2 - 1)) / total;
        return 1 - dq;
      }
      return 1;
    }
    let soFar = 0;
    for (let i = 0; i < n - 1; i++) {
      if (means[i] === x) {
        let dw = 0;
        while (i < n && means[i] === x) {
          dw += weights[i];
          i++;
        }
        return (soFar + dw / 2) / total;
      }
      if (means[i] <= x && x < means[i + 1]) {
        if (means[i + 1] - means[i] > 0) {
          let leftExcluded = 0;
          let rightExcluded = 0;
          if (weights[i] === 1) {
            if (weights[i + 1] === 1) return (soFar + 1) / total;
            leftExcluded = 0.5;
          } else if (weights[i + 1] === 1) {
            rightExcluded = 0.5;
          }
          const dw = (weights[i] + weights[i + 1]) / 2;
          const base = soFar + weights[i] / 2 + leftExcluded;
          return (base + ((dw - leftExcluded - rightExcluded) * (x - means[i])) / (means[i + 1] - means[i])) / total;
        }
        return (soFar + (weights[i] + weights[i + 1]) / 2) / total;
      }
      soFar += weights[i];
    }
    // x equals the last centroid's mean.
    return 1 - 0.5 / total;
  }

  /** The centroids (after merging the buffer), for tests and tools. */
  centroids(): { means: Float64Array; weights: Float64Array } {
    this.flush();
    return { means: this.means.slice(0, this.n), weights: this.weights.slice(0, this.n) };
  }

  /**
   * Format 2 (what dist_quantile / dist_cdf read in SQL), all big-endian: 0
   * version (2), 1 kind, 2 compression (f64), 10 min (f64), 18 max (f64), 26
   * centroid count n (u32), 30 the n means ascending (f64), then the n
   * weights (f64). Format 1 (little-endian, varint counts and weights) is still read.
   */
  serialize(): Uint8Array {
    const copy = this.buffered > 0 ? this.clone() : this;
    copy.flush();
    const n = copy.n;
    const w = new ByteWriter(32 + n * 16);
    w.header(SketchKind.tdigest, 2).f64be(copy.compression).f64be(copy.lo).f64be(copy.hi).u32be(n);
    for (let i = 0; i < n; i++) w.f64be(copy.means[i]);
    for (let i = 0; i < n; i++) w.f64be(copy.weights[i]);
    return w.finish();
  }

  static deserialize(bytes: Uint8Array): TDigest {
    const r = new ByteReader(bytes, 'tdigest');
    const version = r.header(SketchKind.tdigest, 2);
    const compression = version === 1 ? r.f64() : r.f64be();
    if (!(compression >= TDIGEST_MIN_COMPRESSION && compression <= TDIGEST_MAX_COMPRESSION)) throw corrupt('tdigest');
    const digest = new TDigest(compression);
    const lo = version === 1 ? r.f64() : r.f64be();
    const hi = version === 1 ? r.f64() : r.f64be();
    const n = version === 1 ? r.count(bytes.length) : r.u32be();
    if (n > bytes.length) throw corrupt('tdigest');
    const encoding = version === 1 ? r.u8() : 1;
    if (encoding > 1) throw corrupt('tdigest');
    const means = new Float64Array(n);
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      means[i] = version === 1 ? r.f64() : r.f64be();
      if (!Number.isFinite(means[i]) || (i > 0 && means[i] < means[i - 1])) throw corrupt('tdigest');
    }
    let total = 0;
    for (let i = 0; i < n; i++) {
      weights[i] = encoding === 0 ? r.varuint() : version === 1 ? r.f64() : r.f64be();
      if (!(weights[i] > 0) || !Number.isFinite(weights[i])) throw corrupt('tdigest');
      total += weights[i];
    }
    r.end();
    if (n > 0 && !(lo <= means[0] && hi >= means[n - 1])) throw corrupt('tdigest');
    digest.means = means;
    digest.weights = weights;
    digest.n = n;
    digest.merged = total;
    if (n > 0) {
      digest.lo = lo;
      digest.hi = hi;
    }
    return digest;
  }
}

function kOfQ(q: number, normalizer: number): number {
  return normalizer * Math.asin(2 * Math.min(1, Math.max(0, q)) - 1);
}

function qOfK(k: number, normalizer: number): number {
  return k / normalizer >= Math.PI / 2 ? 1 : (Math.sin(k / normalizer) + 1) / 2;
}

function weightedAverage(x1: number, w1: number, x2: number, w2: number): number {
  if (x1 > x2) return weightedAverage(x2, w2, x1, w1);
  const x = (x1 * w1 + x2 * w2) / (w1 + w2);
  return Math.max(x1, Math.min(x, x2));
}
