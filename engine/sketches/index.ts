/**
 * Probabilistic and small exact sketches behind PipelineDB's aggregates,
 * pure TypeScript without I/O. Every state merges (associative and
 * commutative, except bucket_agg without timestamps, where the later state
 * wins) and serializes to a versioned binary form for a bytea column:
 * byte 0 is the format version, byte 1 the sketch kind (see codec.ts).
 *
 * The classes mutate in place (add, merge return `this`); the PipelineDB-named
 * functions below say which of their arguments they change.
 */
import { SqlError, SqlState } from '../errors.ts';
import type { Value } from '../values/index.ts';
import { BloomFilter } from './bloom.ts';
import { BucketAgg } from './bucket.ts';
import { peekKind, SketchKind } from './codec.ts';
import { CountMinSketch } from './count-min.ts';
import { ExactSet } from './exact-set.ts';
import { FirstValues } from './first-values.ts';
import { HyperLogLog } from './hll.ts';
import { KeyedExtreme } from './keyed.ts';
import { TDigest } from './tdigest.ts';
import { TopK, type TopKEntry } from './topk.ts';

export { BloomFilter, BLOOM_DEFAULT_N, BLOOM_DEFAULT_P, type BloomParams } from './bloom.ts';
export { BucketAgg } from './bucket.ts';
export { FORMAT_VERSION, INVALID_BINARY_REPRESENTATION, SketchKind, sketchKindName } from './codec.ts';
export { compareValues, valueKey } from './common.ts';
export { CountMinSketch, CMS_DEFAULT_EPS, CMS_DEFAULT_P, type CountMinParams } from './count-min.ts';
export { ExactSet } from './exact-set.ts';
export { FirstValues, type FirstValuesParams } from './first-values.ts';
export { canonicalBytes, hashValue, murmur3x64, normalizeNumericText, pgFloatText, sqlHash } from './hash.ts';
export { HyperLogLog, HLL_DEFAULT_P, HLL_MAX_P, HLL_MIN_P, type HllParams } from './hll.ts';
export { KeyedExtreme, type KeyedMode } from './keyed.ts';
export { TDigest, TDIGEST_DEFAULT_COMPRESSION, type TDigestParams } from './tdigest.ts';
export { TopK, type TopKEntry, type TopKParams } from './topk.ts';

export type Sketch = HyperLogLog | TDigest | CountMinSketch | TopK | BloomFilter | ExactSet | KeyedExtreme | FirstValues | BucketAgg;

/** Reads any serialized state, dispatching on its kind byte. */
export function deserializeSketch(bytes: Uint8Array): Sketch {
  switch (peekKind(bytes)) {
    case SketchKind.hll:
      return HyperLogLog.deserialize(bytes);
    case SketchKind.tdigest:
      return TDigest.deserialize(bytes);
    case SketchKind.countMin:
      return CountMinSketch.deserialize(bytes);
    case SketchKind.topK:
      return TopK.deserialize(bytes);
    case SketchKind.bloom:
      return BloomFilter.deserialize(bytes);
    case SketchKind.set:
      return ExactSet.deserialize(bytes);
    case SketchKind.keyed:
      return KeyedExtreme.deserialize(bytes);
    case SketchKind.firstValues:
      return FirstValues.deserialize(bytes);
    case SketchKind.bucket:
      return BucketAgg.deserialize(bytes);
  }
}

/** Merges `from` into `into` (same sketch class required). */
export function mergeSketch<S extends Sketch>(into: S, from: S): S {
  if (into.constructor !== from.constructor) {
    throw new SqlError(SqlState.datatypeMismatch, 'cannot merge sketches of different kinds');
  }
  (into as { merge(o: Sketch): unknown }).merge(from);
  return into;
}

function cloneAll<S extends { clone(): S; merge(o: S): S }>(first: S, rest: S[]): S {
  const out = first.clone();
  for (const s of rest) out.merge(s);
  return out;
}

// ---- HyperLogLog ----

/** hll_agg(x [, p]) over a sequence of values. */
export function hllAgg(values: Iterable<Value>, p?: number): HyperLogLog {
  const h = HyperLogLog.create({ p });
  for (const v of values) h.add(v);
  return h;
}
/** hll_add(hll, x): adds to `h` in place and returns it. */
export function hllAdd(h: HyperLogLog, value: Value): HyperLogLog {
  return h.add(value);
}
/** hll_union(hll, ...): a new sketch; inputs are unchanged. */
export function hllUnion(first: HyperLogLog, ...rest: HyperLogLog[]): HyperLogLog {
  return cloneAll(first, rest);
}
/** hll_cardinality(hll) */
export function hllCardinality(h: HyperLogLog): number {
  return h.cardinality();
}

// ---- t-digest ----

/** dist_agg(x [, compression]) over a sequence of values. */
export function distAgg(values: Iterable<Value>, compression?: number): TDigest {
  const d = TDigest.create({ compression });
  for (const v of values) d.add(v);
  return d;
}
/** dist_add(dist, x [, weight]): adds to `d` in place and returns it. */
export function distAdd(d: TDigest, value: Value, weight?: number): TDigest {
  if (weight === undefined || weight === 1) return d.add(value);
  if (value === null) return d;
  return d.addWeighted(typeof value === 'number' ? value : Number(value), weight);
}
/** dist_quantile(dist, q) and dist_quantile(dist, q[]). */
export function distQuantile(d: TDigest, q: number): number | null;
export function distQuantile(d: TDigest, q: readonly number[]): (number | null)[];
export function distQuantile(d: TDigest, q: number | readonly number[]): number | null | (number | null)[] {
  return typeof q === 'number' ? d.quantile(q) : q.map((x) => d.quantile(x));
}
/** dist_cdf(dist, x) */
export function distCdf(d: TDigest, x: number): number | null {
  return d.cdf(x);
}
/** Merge of dist states (combine): a new digest; inputs are unchanged. */
export function distUnion(first: TDigest, ...rest: TDigest[]): TDigest {
  return cloneAll(first, rest);
}
/** percentile_cont(q) / percentile_cont(q[]) WITHIN GROUP (ORDER BY x) from a digest of x. */
export function percentileCont(d: TDigest, q: number): number | null;
export function percentileCont(d: TDigest, q: readonly number[]): (number | null)[];
export function percentileCont(d: TDigest, q: number | readonly number[]): number | null | (number | null)[] {
  return typeof q === 'number' ? d.percentileCont(q) : q.map((x) => d.percentileCont(x));
}

// ---- count-min ----

/** freq_agg(x [, eps, p]) over a sequence of values. */
export function freqAgg(values: Iterable<Value>, eps?: number, p?: number): CountMinSketch {
  const c = CountMinSketch.create({ eps, p });
  for (const v of values) c.add(v);
  return c;
}
/** freq(cms, x) */
export function freq(c: CountMinSketch, value: Value): number {
  return c.frequency(value);
}
/** freq_norm(cms, x) */
export function freqNorm(c: CountMinSketch, value: Value): number {
  return c.normalizedFrequency(value);
}
/** freq_total(cms) */
export function freqTotal(c: CountMinSketch): number {
  return c.totalCount();
}
/** freq_add(cms, x [, count]): adds to `c` in place and returns it. */
export function freqAdd(c: CountMinSketch, value: Value, count = 1): CountMinSketch {
  return c.add(value, count);
}
/** freq_merge_agg(cms): a new sketch; inputs are unchanged. */
export function freqMergeAgg(first: CountMinSketch, ...rest: CountMinSketch[]): CountMinSketch {
  return cloneAll(first, rest);
}

// ---- top-k ----

/** topk_agg(x, k [, weight]) over a sequence of values (or [value, weight] pairs). */
export function topkAgg(values: Iterable<Value | readonly [Value, number]>, k: number): TopK {
  const t = TopK.create({ k });
  for (const v of values) {
    if (Array.isArray(v)) t.add(v[0] as Value, v[1] as number);
    else t.add(v as Value);
  }
  return t;
}
/** topk(topk): the top k (value, frequency) pairs, by frequency desc then value. */
export function topk(t: TopK): TopKEntry[] {
  return t.top();
}
/** topk_values(topk) */
export function topkValues(t: TopK): Value[] {
  return t.topValues();
}
/** topk_freqs(topk) */
export function topkFreqs(t: TopK): number[] {
  return t.topFrequencies();
}
/** topk_increment(topk, x [, weight]): adds to `t` in place and returns it. */
export function topkIncrement(t: TopK, value: Value, weight = 1): TopK {
  return t.add(value, weight);
}
/** topk_merge_agg(topk): a new sketch; inputs are unchanged. */
export function topkMergeAgg(first: TopK, ...rest: TopK[]): TopK {
  return cloneAll(first, rest);
}

// ---- bloom ----

/** bloom_agg(x [, p, n]) over a sequence of values. */
export function bloomAgg(values: Iterable<Value>, p?: number, n?: number): BloomFilter {
  const b = BloomFilter.create({ p, n });
  for (const v of values) b.add(v);
  return b;
}
/** bloom_add(bloom, x): adds to `b` in place and returns it. */
export function bloomAdd(b: BloomFilter, value: Value): BloomFilter {
  return b.add(value);
}
/** bloom_contains(bloom, x) */
export function bloomContains(b: BloomFilter, value: Value): boolean {
  return b.contains(value);
}
/** bloom_cardinality(bloom) */
export function bloomCardinality(b: BloomFilter): number {
  return b.cardinality();
}
/** bloom_union_agg(bloom): a new filter; inputs are unchanged. */
export function bloomUnionAgg(first: BloomFilter, ...rest: BloomFilter[]): BloomFilter {
  const out = first.clone();
  for (const b of rest) out.union(b);
  return out;
}
/** bloom_intersection_agg(bloom): a new filter; inputs are unchanged. */
export function bloomIntersectionAgg(first: BloomFilter, ...rest: BloomFilter[]): BloomFilter {
  const out = first.clone();
  for (const b of rest) out.intersect(b);
  return out;
}

// ---- exact sets ----

/** set_agg(x) over a sequence of values. */
export function setAgg(values: Iterable<Value>): ExactSet {
  const s = ExactSet.create();
  for (const v of values) s.add(v);
  return s;
}
/** set_cardinality(set) */
export function setCardinality(s: ExactSet): number {
  return s.cardinality();
}
/** exact_count_distinct(x) over a sequence of values. */
export function exactCountDistinct(values: Iterable<Value>): number {
  return setAgg(values).cardinality();
}

// ---- keyed_max / keyed_min / first_values ----

/** keyed_max(key, value) over (key, value) pairs. */
export function keyedMax(rows: Iterable<readonly [Value, Value]>): Value {
  const s = KeyedExtreme.create({ mode: 'max' });
  for (const [k, v] of rows) s.add(k, v);
  return s.result();
}
/** keyed_min(key, value) over (key, value) pairs. */
export function keyedMin(rows: Iterable<readonly [Value, Value]>): Value {
  const s = KeyedExtreme.create({ mode: 'min' });
  for (const [k, v] of rows) s.add(k, v);
  return s.result();
}
/** first_values(n) WITHIN GROUP (ORDER BY x [DESC]) over a sequence of values. */
export function firstValues(n: number, values: Iterable<Value>, descending = false): Value[] {
  const s = FirstValues.create({ n, descending });
  for (const v of values) s.add(v);
  return s.values();
}

// ---- bucket_agg ----

/** bucket_agg(x, bucket_id [, ts]) over rows. */
export function bucketAgg(rows: Iterable<readonly [Value, number] | readonly [Value, number, Value]>): BucketAgg {
  const b = BucketAgg.create();
  for (const row of rows) b.add(row[0], row[1], row[2]);
  return b;
}
/** bucket_ids(bucket_agg) */
export function bucketIds(b: BucketAgg): number[] {
  return b.ids();
}
/** bucket_cardinalities(bucket_agg), in the order of bucket_ids. */
export function bucketCardinalities(b: BucketAgg): number[] {
  return b.cardinalities();
}
/** bucket_cardinality(bucket_agg, id) */
export function bucketCardinality(b: BucketAgg, id: number): number {
  return b.bucketCardinality(id);
}

// ---- aggregate table ----

/**
 * How each PipelineDB aggregate builds its state, for the engine's
 * continuous views: `params` are the positions of the constant arguments
 * (passed to create, in order), every other argument is per row (passed to
 * add, in order). Merging is mergeSketch; the stored form is serialize().
 * The merge aggregates (hll_union_agg, freq_merge_agg, topk_merge_agg,
 * bloom_union_agg, bloom_intersection_agg, combine) are mergeSketch (or
 * BloomFilter.intersect) over deserialized states.
 */
export interface SketchAggregate {
  kind: SketchKind;
  params: readonly number[];
  create(params: readonly Value[]): Sketch;
  add(state: Sketch, row: readonly Value[]): void;
}

function num(v: Value | undefined, name: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof v === 'boolean' || Number.isNaN(n)) {
    throw new SqlError(SqlState.invalidParameterValue, `${name} must be a number`);
  }
  return n;
}

export const SKETCH_AGGREGATES: Readonly<Record<string, SketchAggregate>> = {
  hll_agg: {
    kind: SketchKind.hll,
    params: [1],
    create: ([p]) => HyperLogLog.create({ p: num(p, 'p') }),
    add: (s, [x]) => void (s as HyperLogLog).add(x),
  },
  /** count(DISTINCT x) in a continuous view: an hll_agg at the default p; the result is cardinality(). */
  count_distinct: {
    kind: SketchKind.hll,
    params: [],
    create: () => HyperLogLog.create(),
    add: (s, [x]) => void (s as HyperLogLog).add(x),
  },
  dist_agg: {
    kind: SketchKind.tdigest,
    params: [1],
    create: ([c]) => TDigest.create({ compression: num(c, 'compression') }),
    add: (s, [x]) => void (s as TDigest).add(x),
  },
  percentile_cont: {
    kind: SketchKind.tdigest,
    params: [],
    create: () => TDigest.create(),
    add: (s, [x]) => void (s as TDigest).add(x),
  },
  freq_agg: {
    kind: SketchKind.countMin,
    params: [1, 2],
    create: ([eps, p]) => CountMinSketch.create({ eps: num(eps, 'eps'), p: num(p, 'p') }),
    add: (s, [x]) => void (s as CountMinSketch).add(x),
  },
  topk_agg: {
    kind: SketchKind.topK,
    params: [1],
    create: ([k]) => TopK.create({ k: num(k, 'k') ?? 10 }),
    add: (s, [x, w]) => void (s as TopK).add(x, w === undefined || w === null ? 1 : (num(w, 'weight') as number)),
  },
  bloom_agg: {
    kind: SketchKind.bloom,
    params: [1, 2],
    create: ([p, n]) => BloomFilter.create({ p: num(p, 'p'), n: num(n, 'n') }),
    add: (s, [x]) => void (s as BloomFilter).add(x),
  },
  set_agg: {
    kind: SketchKind.set,
    params: [],
    create: () => ExactSet.create(),
    add: (s, [x]) => void (s as ExactSet).add(x),
  },
  exact_count_distinct: {
    kind: SketchKind.set,
    params: [],
    create: () => ExactSet.create(),
    add: (s, [x]) => void (s as ExactSet).add(x),
  },
  keyed_max: {
    kind: SketchKind.keyed,
    params: [],
    create: () => KeyedExtreme.create({ mode: 'max' }),
    add: (s, [k, v]) => void (s as KeyedExtreme).add(k, v ?? null),
  },
  keyed_min: {
    kind: SketchKind.keyed,
    params: [],
    create: () => KeyedExtreme.create({ mode: 'min' }),
    add: (s, [k, v]) => void (s as KeyedExtreme).add(k, v ?? null),
  },
  first_values: {
    kind: SketchKind.firstValues,
    params: [0],
    create: ([n]) => FirstValues.create({ n: num(n, 'n') ?? 1 }),
    add: (s, [x]) => void (s as FirstValues).add(x),
  },
  bucket_agg: {
    kind: SketchKind.bucket,
    params: [],
    create: () => BucketAgg.create(),
    add: (s, [x, id, ts]) => {
      if (id !== null && id !== undefined) (s as BucketAgg).add(x, num(id, 'bucket id') as number, ts);
    },
  },
};
