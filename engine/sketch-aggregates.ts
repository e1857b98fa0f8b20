import { SqlError, SqlState } from './errors.ts';
import { HyperLogLog, TDigest, normalizeNumericText } from './sketches/index.ts';
import { formatFloat } from './values/index.ts';
import type { AggregatePlan } from './view-plan.ts';

/**
 * Aggregates whose state is a sketch the engine merges itself (PostgreSQL
 * cannot combine our sketches in SQL): the `_mrel` keeps the serialized
 * sketch (bytea) and, beside it, the aggregate's current result, which the
 * view reads. PipelineDB's rewrites: `count(DISTINCT x)` → HyperLogLog
 * (p = 14), `percentile_cont(q) WITHIN GROUP (ORDER BY x)` → t-digest
 * (compression 200).
 */
export interface SketchAggregate {
  /** SQL type of the result column. */
  resultType: string;
  create(): SketchState;
  /** Adds one value, as PostgreSQL prints it for the argument's type. */
  add(state: SketchState, text: string): void;
  merge(into: SketchState, from: SketchState): void;
  serialize(state: SketchState): Uint8Array;
  deserialize(bytes: Uint8Array): SketchState;
  /** The result as PostgreSQL text (null = SQL NULL). */
  result(state: SketchState): string | null;
}

export type SketchState = HyperLogLog | TDigest;

const numericTypes = new Set(['int2', 'int4', 'int8', 'float4', 'float8', 'numeric']);

/** Whether a plan's aggregate is a sketch the engine merges. */
export function isSketchAggregate(plan: AggregatePlan): boolean {
  return plan.sketch !== undefined;
}

export function sketchAggregate(plan: AggregatePlan): SketchAggregate {
  const sketch = plan.sketch;
  if (sketch?.kind === 'hll') return distinctCount(plan.arg?.typeName ?? '');
  if (sketch?.kind === 'tdigest') return percentile(plan, sketch.fractions ?? [], sketch.array === true);
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

function percentile(plan: AggregatePlan, fractions: number[], array: boolean): SketchAggregate {
  if (!numericTypes.has(plan.arg?.typeName ?? '')) {
    throw new SqlError(SqlState.featureNotSupported, `percentile_cont over ${plan.arg?.type} is not supported in a continuous view`, { hint: 'Order by a numeric expression.' });
  }
  for (const q of fractions) {
    if (!(q >= 0 && q <= 1)) throw new SqlError(SqlState.numericValueOutOfRange, `percentile value ${q} is not between 0 and 1`);
  }
  return {
    resultType: array ? 'double precision[]' : 'double precision',
    create: () => TDigest.create({ compression: 200 }),
    add: (state, text) => void (state as TDigest).add(Number(text)),
    merge: (into, from) => void (into as TDigest).merge(from as TDigest),
    serialize: (state) => state.serialize(),
    deserialize: (bytes) => TDigest.deserialize(bytes),
    result: (state) => {
      const values = fractions.map((q) => (state as TDigest).percentileCont(q));
      if (!array) return values[0] === null ? null : formatFloat(values[0]);
      return `{${values.map((v) => (v === null ? 'NULL' : formatFloat(v))).join(',')}}`;
    },
  };
}
