/**
 * The compiled form of a continuous view, as the planner (sql/planner) hands
 * it to the engine and as the catalog persists it (plain JSON).
 */
import type { Expr } from './expressions/index.ts';
import type { KafkaSinkTarget } from './sinks.ts';

export type AggregateName =
  | 'count' | 'sum' | 'avg' | 'min' | 'max'
  | 'bool_and' | 'bool_or' | 'every' | 'bit_and' | 'bit_or'
  | 'string_agg' | 'array_agg' | 'json_agg' | 'jsonb_agg' | 'json_object_agg' | 'jsonb_object_agg'
  | 'exact_count_distinct' | 'set_agg' | 'keyed_max' | 'keyed_min' | 'first_values' | 'combine'
  | 'var_samp' | 'var_pop' | 'variance' | 'stddev' | 'stddev_samp' | 'stddev_pop'
  | 'percentile_cont' | 'percentile_disc'
  | NamedSketchAggregate
  | 'rank' | 'dense_rank' | 'percent_rank' | 'cume_dist'
  | 'corr' | 'covar_pop' | 'covar_samp' | 'regr_avgx' | 'regr_avgy' | 'regr_count' | 'regr_intercept'
  | 'regr_r2' | 'regr_slope' | 'regr_sxx' | 'regr_sxy' | 'regr_syy';

/** PipelineDB's sketch aggregates by name, whose view column is the sketch state itself (bytea). */
export const namedSketchAggregates = ['topk_agg', 'hll_agg', 'freq_agg', 'bloom_agg', 'dist_agg', 'bucket_agg'] as const;
export type NamedSketchAggregate = (typeof namedSketchAggregates)[number];

export interface SketchPlan {
  kind: 'hll' | 'tdigest' | 'topk' | 'cms' | 'bloom' | 'bucket';
  fractions?: (number | null)[];
  array?: boolean;
  descending?: boolean;
  /**
   * A named sketch aggregate (topk_agg, hll_agg, …): `column` holds the
   * serialized state (bytea), read with the sketch functions; there is no
   * separate result. `params` are its constant arguments (NULL where not
   * given), `rowArgs` its further per-row arguments (SQL over the stream).
   */
  named?: true;
  params?: (number | null)[];
  rowArgs?: string[];
}

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
  /** The expression compiled for the engine, when it can evaluate it. */
  compiled?: Expr;
}

export interface HypotheticalColumn {
  value: string;
  type: string;
  descending: boolean;
  nullsFirst: boolean;
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
  /** The argument and the FILTER compiled for the engine, when it can evaluate them. */
  compiledArg?: Expr;
  compiledFilter?: Expr;
  /** Further arguments (string_agg's delimiter), as SQL constants. */
  extraArgs?: string[];
  /** The second per-row argument of two-argument aggregates (corr, covar_*, regr_*: the X of (Y, X); json(b)_object_agg: the value). */
  secondArgSql?: string;
  /** The type of the second per-row argument (keyed_max/keyed_min's value). */
  secondArg?: TypeRef;
  /** `FILTER (WHERE …)` as SQL over the stream. */
  filter?: string;
  /** `array_agg(DISTINCT x)`: PipelineDB's set_agg. */
  distinct?: boolean;
  /**
   * Set for aggregates kept as a sketch the engine merges (count(DISTINCT) as
   * HyperLogLog, percentile_cont/percentile_disc as t-digest); `column` then
   * holds the result and `stateColumn` the serialized sketch. `fractions` are
   * the percentiles asked for (null where the fraction is NULL), `descending`
   * is `WITHIN GROUP (ORDER BY x DESC)`.
   */
  sketch?: SketchPlan;
  stateColumn?: string;
  /**
   * Hypothetical-set aggregates (rank, dense_rank, percent_rank, cume_dist)
   * `(v) WITHIN GROUP (ORDER BY x …)`: `value` is v as an SQL constant of
   * `type`, the type PostgreSQL compares v and x in (their common type), and
   * the sort order x is ranked in; `more`, the values and sort expressions
   * after the first (`rank(v1, v2) WITHIN GROUP (ORDER BY x1, x2)`).
   */
  hypothetical?: HypotheticalColumn & { more?: (HypotheticalColumn & { sql: string })[] };
  /** combine((delta).col) over an output stream: the upstream view's aggregate whose states it merges. */
  combines?: AggregatePlan;
  /** A user-defined aggregate (one with a combine function); `fn` is then its name. */
  userDefined?: UserAggregatePlan;
  /** Per-row arguments after the first, as SQL over the stream (user-defined aggregates). */
  moreArgsSql?: string[];
}

/** How a user-defined aggregate is kept: see sql/user-aggregates.ts. */
export interface UserAggregatePlan {
  /** The aggregate, as regprocedure text. */
  signature: string;
  /** Helper aggregate giving a batch's state (the transition function without the final one). */
  partial: string;
  /** Helper aggregate merging many states (the combine function as transition function). */
  combineAggregate: string;
  combineFn: string;
  combineStrict: boolean;
  finalFn?: string;
  /** FINALFUNC_EXTRA: the NULL arguments passed to the final function after the state. */
  finalExtraArgs?: string[];
  stateType: string;
  /** Creates the helper aggregates (idempotent). */
  ddl: string[];
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
  /** `outputfunc=pipeline_kafka.emit_tuple(…)` / `emit_upserts(…)`: topics its rows are produced to. */
  kafka?: KafkaSinkTarget[];
  /** WHERE and every output compiled for the engine, when it can evaluate them all. */
  compiled?: { where?: Expr; outputs: Expr[] };
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
  /** The WHERE clause compiled for the engine, when it can evaluate it. */
  compiledWhere?: Expr;
  groups: GroupPlan[];
  aggregates: AggregatePlan[];
  /**
   * GROUP BY GROUPING SETS / CUBE / ROLLUP: the `_mrel` keeps a row per
   * grouping set and key. `column`, one of `groups`, holds the set's number;
   * `sets` lists each set's keys (indexes into `groups`), duplicates included
   * as PostgreSQL keeps them. A batch is read once per set (crossed with the
   * set numbers, see groupingSetsFromSql) and a key a set lacks is NULL.
   */
  groupingSets?: { column: string; sets: number[][] };
  /** `SELECT DISTINCT ON (groups) …`: per key, the row first in ORDER BY (the earliest arrival on ties). */
  distinctOn?: DistinctOnPlan;
  /** A sliding window over `column`: the view merges, when read, the buckets of width `step` still inside `interval`. */
  window?: { interval: string; step: string; column: string };
  /** Rows whose `column` (a grouping column of timestamps) is older than `interval` are removed by the reaper. */
  ttl?: { interval: string; column: string };
  /** No aggregates and no GROUP BY: the `_mrel` keeps every selected row (`groups` are its columns). */
  appendOnly?: boolean;
  /** The view's columns holding its grouping keys (a change feed's message key). */
  keyColumns?: string[];
  /** Set for a continuous transform (`action=transform`): its rows go on rather than being aggregated. */
  transform?: TransformPlan;
  /** The user's CREATE VIEW statement, for the catalog. */
  definition: string;
  /** Its output stream has a delta column (the `_mrel` row of each change's partial state). */
  outputDelta?: boolean;
  /** Types made for the view (first_values of several values: its tuples), dropped with it. */
  ownedTypes?: string[];
}

/** The kept row of a DISTINCT ON view: its values, and the sort keys deciding which row it is. */
export interface DistinctOnPlan {
  /** The row's selected values that are not DISTINCT ON keys: `_mrel` column, SQL over the stream, type. */
  values: { column: string; sql: string; type: string }[];
  /** ORDER BY terms after the DISTINCT ON keys; `type` may carry a COLLATE clause. */
  order: { column: string; sql: string; type: string; descending: boolean; nullsFirst: boolean }[];
}

/**
 * Conflict target of an ungrouped view's single row: its `_mrel` has a unique
 * index on the constant `(true)`.
 */
export const singleRowKey = '(true)';
