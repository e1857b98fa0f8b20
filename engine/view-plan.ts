/**
 * The compiled form of a continuous view, as the planner (sql/planner) hands
 * it to the engine and as the catalog persists it (plain JSON).
 */

export type AggregateName =
  | 'count' | 'sum' | 'avg' | 'min' | 'max'
  | 'bool_and' | 'bool_or' | 'every' | 'bit_and' | 'bit_or'
  | 'string_agg' | 'array_agg' | 'json_agg' | 'jsonb_agg'
  | 'var_samp' | 'var_pop' | 'variance' | 'stddev' | 'stddev_samp' | 'stddev_pop'
  | 'percentile_cont'
  | 'corr' | 'covar_pop' | 'covar_samp' | 'regr_avgx' | 'regr_avgy' | 'regr_count' | 'regr_intercept'
  | 'regr_r2' | 'regr_slope' | 'regr_sxx' | 'regr_sxy' | 'regr_syy';

export interface TypeRef {
  /** `format_type()` spelling, usable in casts. */
  type: string;
  /** `pg_type.typname`. */
  typeName: string;
}

export interface GroupPlan extends TypeRef {
  /** Column of the `_mrel` table holding this group key. */
  column: string;
  /** The grouping expression, as SQL over the stream (alias `source.alias`). */
  sql: string;
  /** Set when the expression is a plain stream column (the engine groups it itself). */
  sourceColumn?: string;
}

export interface AggregatePlan {
  fn: AggregateName;
  /** `count(*)`. */
  star: boolean;
  /** Column of the `_mrel` table holding the transition state. */
  column: string;
  /** Argument expression as SQL over the stream; absent for count(*). */
  argSql?: string;
  arg?: TypeRef;
  /** Set when the argument is a plain stream column. */
  sourceColumn?: string;
  /** Further arguments (string_agg's delimiter), as SQL constants. */
  extraArgs?: string[];
  /** The second per-row argument of two-argument aggregates (corr, covar_*, regr_*: the X of (Y, X)). */
  secondArgSql?: string;
  /** `FILTER (WHERE …)` as SQL over the stream. */
  filter?: string;
  /** `array_agg(DISTINCT x)`: PipelineDB's set_agg. */
  distinct?: boolean;
  /**
   * Set for aggregates kept as a sketch the engine merges (count(DISTINCT) as
   * HyperLogLog, percentile_cont as t-digest); `column` then holds the result
   * and `stateColumn` the serialized sketch.
   */
  sketch?: { kind: 'hll' | 'tdigest'; fractions?: number[]; array?: boolean };
  stateColumn?: string;
}

/** Variance and standard deviation, kept as {N, Σx, Sxx} (floats) or {N, Σx, Σx²} (exact types). */
export const varianceAggregates: ReadonlySet<AggregateName> = new Set<AggregateName>(['var_samp', 'var_pop', 'variance', 'stddev', 'stddev_samp', 'stddev_pop']);

/** Aggregates of pairs (Y, X) kept as PostgreSQL's {N, Σx, Sxx, Σy, Syy, Sxy} (regr_count apart: a count). */
export const regressionAggregates: ReadonlySet<AggregateName> = new Set<AggregateName>([
  'corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy',
]);

export interface TransformPlan {
  /** The selected columns, as SQL over the batch. */
  outputs: { name: string; type: string; sql: string }[];
  /** `outputfunc=pipelinedb.insert_into_stream('s', …)`: the streams its rows are written to. */
  insertInto: { schema: string; name: string }[];
  /** Another outputfunc: a table whose AFTER INSERT trigger calls it with each row as NEW. */
  triggerTable?: { schema: string; name: string };
}

export interface ViewPlan {
  schema: string;
  name: string;
  /** The `_mrel` table (same schema). */
  mrel: string;
  stream: { schema: string; name: string; alias: string };
  /** Stream columns the view reads. */
  columns: string[];
  /**
   * The FROM clause as SQL when it is more than the stream (joins with
   * tables, sub-selects): the batch is then bound to the stream's name as a CTE.
   */
  from?: string;
  /** WHERE clause as SQL over the stream, if any. */
  where?: string;
  groups: GroupPlan[];
  aggregates: AggregatePlan[];
  /** A sliding window over `column`: the view merges, when read, the buckets of width `step` still inside `interval`. */
  window?: { interval: string; step: string; column: string };
  /** Rows whose `column` (a grouping column of timestamps) is older than `interval` are removed by the reaper. */
  ttl?: { interval: string; column: string };
  /** No aggregates and no GROUP BY: the `_mrel` keeps every selected row (`groups` are its columns). */
  appendOnly?: boolean;
  /** Set for a continuous transform (`action=transform`): its rows go on rather than being aggregated. */
  transform?: TransformPlan;
  /** The user's CREATE VIEW statement, for the catalog. */
  definition: string;
}

/**
 * Conflict target of an ungrouped view's single row: its `_mrel` has a unique
 * index on the constant `(true)`.
 */
export const singleRowKey = '(true)';
