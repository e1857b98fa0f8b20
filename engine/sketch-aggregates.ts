import { SqlError, SqlState } from './errors.ts';
import { BloomFilter, BucketAgg, CountMinSketch, HyperLogLog, TDigest, TopK, normalizeNumericText } from './sketches/index.ts';
import { formatFloat } from './values/index.ts';
import type { AggregatePlan } from './view-plan.ts';

/**
 * Aggregates whose state is a sketch the engine merges itself (PostgreSQL
 * cannot combine our sketches in SQL): the `_mrel` keeps the serialized
 * sketch (bytea) and, beside it, the aggregate's current result, which the
 * view reads. PipelineDB's rewrites: `count(DISTINCT x)` → HyperLogLog
 * (p = 14), `percentile_cont(q) WITHIN GROUP (ORDER BY x)` → t-digest
 * (compression 200); `percentile_disc`, which PipelineDB lacked, over the
 * same t-digest. PipelineDB's named sketch aggregates (topk_agg, hll_agg,
 * freq_agg, bloom_agg, dist_agg) keep only the sketch: the view's column is
 * the serialized state (bytea), read with the SQL functions of
 * engine/sketch-functions.ts (topk_values, hll_cardinality, freq, …).
 */
export interface SketchAggregate {
  /** SQL type of the result column. */
  resultType: string;
  create(): SketchState;
  /** Adds one value, as PostgreSQL prints it for the argument's type, with the row's further arguments (rowArgs). */
  add(state: SketchState, text: string, extra: readonly (string | null)[]): void;
  merge(into: SketchState, from: SketchState): void;
  serialize(state: SketchState): Uint8Array;
  deserialize(bytes: Uint8Array): SketchState;
  /** The result as PostgreSQL text (null = SQL NULL); unused when the state is the result. */
  result(state: SketchState): string | null;
  /** The view's column is the serialized state (PipelineDB's named sketch aggregates). */
  stateIsResult?: boolean;
}

export type SketchState = HyperLogLog | TDigest | TopK | CountMinSketch | BloomFilter | BucketAgg;

const numericTypes = new Set(['int2', 'int4', 'int8', 'float4', 'float8', 'numeric']);

/** Whether a plan's aggregate is a sketch the engine merges. */
export function isSketchAggregate(plan: AggregatePlan): boolean {
  return plan.sketch !== undefined;
}

export function sketchAggregate(plan: AggregatePlan): SketchAggregate {
  const sketch = plan.sketch;
  if (sketch?.named) return namedSketch(plan);
  if (sketch?.kind === 'hll') return distinctCount(plan.arg?.typeName ?? '');
  if (sketch?.kind === 'tdigest') return percentile(plan, sketch.fractions ?? [], sketch.array === true, sketch.descending === true);
  throw new SqlError(SqlState.internalError, `aggregate ${plan.fn} has no sketch`);
}

function distinctCount(typeName: string): SketchAggregate {
  // Equal numerics may print with different scales (1.0, 1.00): hash them alike.
  const canonical = typeName === 'numeric' ? normalizeNumericText : (text: string) => text;
  return {
    resultType: 'bigint',
    create: () => HyperLogLog.create({ p: 14 }),
    add: (state, text) => void (state as HyperLogLog).add(canonical(text)),
    merge: (into, from) => void (into as HyperLogLog).merge(from as HyperLogLog),
    serialize: (state) => state.serialize(),
    deserialize: (bytes) => HyperLogLog.deserialize(bytes),
    result: (state) => String(Math.round((state as HyperLogLog).cardinality())),
  };
}

/**
 * percentile_cont / percentile_disc over a t-digest. percentile_cont is
 * double precision; percentile_disc has the ORDER BY expression's type (an
 * array of it for an array of fractions): its estimate is rounded to that
 * type (integers to the nearest one), so it is a value of x's type within the
 * digest's rank error, and exact in small groups. Non-finite inputs (NaN,
 * ±Infinity) are not kept by the digest; NULLs are ignored, as in PostgreSQL;
 * a NULL fraction gives NULL.
 */
function percentile(plan: AggregatePlan, fractions: (number | null)[], array: boolean, descending: boolean): SketchAggregate {
  const typeName = plan.arg?.typeName ?? '';
  if (!numericTypes.has(typeName)) {
    throw new SqlError(SqlState.featureNotSupported, `${plan.fn} over ${plan.arg?.type} is not supported in a continuous view`, { hint: 'Order by a numeric expression.' });
  }
  for (const q of fractions) {
    if (q !== null && !(q >= 0 && q <= 1)) throw new SqlError(SqlState.numericValueOutOfRange, `percentile value ${q} is not between 0 and 1`);
  }
  const discrete = plan.fn === 'percentile_disc';
  const elementType = discrete ? (plan.arg?.type as string) : 'double precision';
  const format = discrete ? discreteText(typeName) : formatFloat;
  const estimate = (state: TDigest, q: number | null): number | null => {
    if (q === null) return null;
    // Descending order puts the q-th position of percentile_cont at 1 - q of the ascending one.
    return discrete ? state.percentileDisc(q, descending) : state.percentileCont(descending ? 1 - q : q);
  };
  return {
    resultType: array ? `${elementType}[]` : elementType,
    create: () => TDigest.create({ compression: 200 }),
    add: (state, text) => void (state as TDigest).add(Number(text)),
    merge: (into, from) => void (into as TDigest).merge(from as TDigest),
    serialize: (state) => state.serialize(),
    deserialize: (bytes) => TDigest.deserialize(bytes),
    result: (state) => {
      // Over no (non-NULL) values the aggregate is NULL, the array form too.
      if ((state as TDigest).count === 0) return null;
      const values = fractions.map((q) => estimate(state as TDigest, q));
      if (!array) return values[0] === null ? null : format(values[0]);
      return `{${values.map((v) => (v === null ? 'NULL' : format(v))).join(',')}}`;
    },
  };
}

const int8Min = -(2n ** 63n);
const int8Max = 2n ** 63n - 1n;

/** A digest's estimate as text of the ORDER BY type: integers rounded (and kept in int8's range). */
function discreteText(typeName: string): (value: number) => string {
  if (typeName === 'int2' || typeName === 'int4') return (v) => String(Math.round(v) || 0);
  if (typeName === 'int8') {
    return (v) => {
      const n = BigInt(Math.round(v));
      return String(n < int8Min ? int8Min : n > int8Max ? int8Max : n);
    };
  }
  return formatFloat;
}

/** Equal numerics may print with different scales (1.0, 1.00): the sketches see them alike. */
function canonicalText(typeName: string): (text: string) => string {
  return typeName === 'numeric' ? normalizeNumericText : (text) => text;
}

function param(plan: AggregatePlan, i: number, name: string): number | undefined {
  const v = plan.sketch?.params?.[i];
  if (v === null || v === undefined) return undefined;
  if (!Number.isFinite(v)) throw new SqlError(SqlState.invalidParameterValue, `${plan.fn}: ${name} must be a finite number`);
  return v;
}

function weightOf(text: string | null | undefined): number {
  if (text === null || text === undefined) return 1;
  const w = Number(text);
  if (!Number.isSafeInteger(w) || w < 0) throw new SqlError(SqlState.invalidParameterValue, `weight must be a non-negative integer, not ${text}`);
  return w;
}

/**
 * PipelineDB's named sketch aggregates: the view's column is the state
 * (bytea), read with the functions of engine/sketch-functions.ts.
 */
function namedSketch(plan: AggregatePlan): SketchAggregate {
  const canonical = canonicalText(plan.arg?.typeName ?? '');
  const common = {
    resultType: 'bytea',
    stateIsResult: true,
    merge: (into: SketchState, from: SketchState) => void (into as { merge(o: unknown): unknown }).merge(from),
    serialize: (state: SketchState) => state.serialize(),
    result: () => null,
  };
  switch (plan.fn) {
    case 'topk_agg': {
      const k = param(plan, 0, 'k') ?? 10;
      // Fails at CREATE VIEW on a bad k.
      TopK.create({ k });
      return {
        ...common,
        create: () => TopK.create({ k }),
        add: (state, text, extra) => void (state as TopK).add(canonical(text), weightOf(extra[0])),
        deserialize: (bytes) => TopK.deserialize(bytes),
      };
    }
    case 'hll_agg': {
      const p = param(plan, 0, 'p');
      HyperLogLog.create({ p });
      return {
        ...common,
        create: () => HyperLogLog.create({ p }),
        add: (state, text) => void (state as HyperLogLog).add(canonical(text)),
        deserialize: (bytes) => HyperLogLog.deserialize(bytes),
      };
    }
    case 'freq_agg': {
      const params = { eps: param(plan, 0, 'eps'), p: param(plan, 1, 'p') };
      CountMinSketch.create(params);
      return {
        ...common,
        create: () => CountMinSketch.create(params),
        add: (state, text) => void (state as CountMinSketch).add(canonical(text)),
        deserialize: (bytes) => CountMinSketch.deserialize(bytes),
      };
    }
    case 'bloom_agg': {
      const params = { p: param(plan, 0, 'p'), n: param(plan, 1, 'n') };
      BloomFilter.create(params);
      return {
        ...common,
        create: () => BloomFilter.create(params),
        add: (state, text) => void (state as BloomFilter).add(canonical(text)),
        deserialize: (bytes) => BloomFilter.deserialize(bytes),
      };
    }
    case 'dist_agg': {
      const compression = param(plan, 0, 'compression');
      TDigest.create({ compression });
      return {
        ...common,
        create: () => TDigest.create({ compression }),
        add: (state, text) => void (state as TDigest).add(Number(text)),
        deserialize: (bytes) => TDigest.deserialize(bytes),
      };
    }
    case 'bucket_agg':
      return {
        ...common,
        create: () => BucketAgg.create(),
        add: (state, text, [id, ts]) => {
          // A row without a bucket id adds nothing, as a NULL value does.
          if (id !== null && id !== undefined) (state as BucketAgg).add(canonical(text), Number(id), ts ?? undefined);
        },
        deserialize: (bytes) => BucketAgg.deserialize(bytes),
      };
    default:
      throw new SqlError(SqlState.internalError, `aggregate ${plan.fn} has no sketch`);
  }
}
