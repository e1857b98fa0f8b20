import { regressionAggregates, varianceAggregates, type AggregatePlan, type HypotheticalColumn, type UserAggregatePlan } from './view-plan.ts';
import { sketchAggregate } from './sketch-aggregates.ts';
import { SqlError, SqlState } from './errors.ts';
import { jsonObjectMembersSql, jsonObjectSql, smallestSql } from './aggregate-sql.ts';
import { reaggregateSql } from './reaggregate.ts';
import { addNumeric, formatFloat, numericToString, parseNumeric, type Numeric, type Value } from './values/index.ts';

/**
 * Each aggregate is kept in its `_mrel` column as a transition state that
 * combines: partial states computed for a batch are merged into the stored
 * one by SQL in the upsert, so the engine keeps no per-group memory and any
 * number of writers can add to the same view.
 */
export interface AggregateImpl {
  /** SQL type of the state column. */
  stateType: string;
  /** SQL computing a batch's partial state over the stream rows (only over rows passing `filter`, when given). */
  partialSql(arg: string, filter?: string): string;
  /** SQL merging a stored state with a partial one. */
  combineSql(stored: string, partial: string): string;
  /** SQL turning the state into the aggregate's result. */
  finalSql(state: string): string;
  /** The same partial state computed in JS, when the argument type allows. */
  accumulator?: Accumulator;
}

/** init/add/text of a partial state computed by the engine itself. */
export interface Accumulator {
  init(): unknown;
  add(state: unknown, value: Value): unknown;
  /** The state as PostgreSQL text for the state column (null = SQL NULL). */
  text(state: unknown): string | null;
}

/** Column numbering a batch's rows in arrival order (the store-evaluated batch is `unnest(…) WITH ORDINALITY`). */
export const arrivalOrderColumn = 'sluice_arrival_order';

/** An aggregate call, with `FILTER (WHERE …)` when the view's aggregate has one. */
function call(fn: string, args: string, filter: string | undefined, inArrivalOrder = false): string {
  return `${fn}(${args}${inArrivalOrder ? ` ORDER BY ${arrivalOrderColumn}` : ''})${filter ? ` FILTER (WHERE ${filter})` : ''}`;
}

const integerTypes = new Set(['int2', 'int4']);
const numericTypes = new Set(['int2', 'int4', 'int8', 'float4', 'float8', 'numeric']);
const floatTypes = new Set(['float4', 'float8']);

export function aggregateImpl(plan: AggregatePlan): AggregateImpl {
  if (plan.sketch) return sketchColumnImpl(plan);
  if (plan.userDefined) return userDefinedImpl(plan.userDefined, plan);
  if (regressionAggregates.has(plan.fn)) return regressionImpl(plan);
  const typeName = plan.arg?.typeName ?? '';
  if (varianceAggregates.has(plan.fn)) return varianceImpl(plan, typeName);
  switch (plan.fn) {
    case 'count':
      return {
        stateType: 'bigint',
        partialSql: (arg, filter) => call('count', plan.star ? '*' : arg, filter),
        combineSql: (s, p) => `${s} + ${p}`,
        finalSql: (s) => s,
        accumulator: plan.star ? countRows : countValues,
      };
    case 'sum':
      return sumImpl(typeName, plan);
    case 'avg':
      return avgImpl(typeName, plan);
    case 'min':
    case 'max':
      return extremeImpl(plan.fn, typeName, plan);
    case 'bool_and':
    case 'every':
      return storeOnly(plan, 'boolean', (s, p) => `CASE WHEN ${s} IS NULL THEN ${p} WHEN ${p} IS NULL THEN ${s} ELSE ${s} AND ${p} END`);
    case 'bool_or':
      return storeOnly(plan, 'boolean', (s, p) => `CASE WHEN ${s} IS NULL THEN ${p} WHEN ${p} IS NULL THEN ${s} ELSE ${s} OR ${p} END`);
    case 'bit_and':
      return storeOnly(plan, plan.arg?.type ?? 'integer', (s, p) => `coalesce(${s} & ${p}, ${s}, ${p})`);
    case 'bit_or':
      return storeOnly(plan, plan.arg?.type ?? 'integer', (s, p) => `coalesce(${s} | ${p}, ${s}, ${p})`);
    case 'string_agg': {
      const delimiter = plan.extraArgs?.[0] ?? "''";
      const type = plan.arg?.typeName === 'bytea' ? 'bytea' : 'text';
      return storeOnly(plan, type, (s, p) => `coalesce(${s} || ${delimiter} || ${p}, ${s}, ${p})`, true);
    }
    case 'array_agg':
      if (plan.distinct) return distinctArrayImpl(plan);
      return storeOnly(plan, `${plan.arg?.type ?? 'text'}[]`, (s, p) => `${s} || ${p}`, true);
    case 'json_agg':
    case 'jsonb_agg':
      return arrayOfJsonImpl(plan);
    case 'json_object_agg':
      return jsonObjectImpl(plan);
    case 'jsonb_object_agg':
      return jsonbObjectImpl(plan);
    case 'exact_count_distinct':
      return exactCountDistinctImpl(plan);
    case 'set_agg':
      // PipelineDB's set_agg is what array_agg(DISTINCT x) was rewritten to: the sorted distinct values.
      return distinctArrayImpl(plan);
    case 'keyed_max':
    case 'keyed_min':
      return keyedImpl(plan);
    case 'first_values':
      return firstValuesImpl(plan);
    case 'combine':
      return deltaCombineImpl(plan);
    case 'percentile_cont':
    case 'percentile_disc':
      throw new SqlError(SqlState.featureNotSupported, `${plan.fn} is merged by the engine`);
    case 'rank':
    case 'percent_rank':
    case 'cume_dist':
      return hypotheticalRankImpl(plan);
    case 'dense_rank':
      return hypotheticalDenseRankImpl(plan);
    case 'regr_count':
      return {
        stateType: 'bigint',
        partialSql: (arg, filter) => call('regr_count', `${arg}, ${plan.secondArgSql}`, filter),
        combineSql: (s, p) => `${s} + ${p}`,
        finalSql: (s) => s,
      };
    default:
      throw new SqlError(SqlState.internalError, `no implementation for aggregate ${plan.fn}`);
  }
}

/**
 * A user-defined aggregate: the batch's state from its helper aggregate,
 * merged with its combine function (strict ones skip a NULL state, as
 * PostgreSQL's combine step does), finalized when read.
 */
function userDefinedImpl(udf: UserAggregatePlan, plan: AggregatePlan): AggregateImpl {
  return {
    stateType: udf.stateType,
    partialSql: (arg, filter) => call(udf.partial, [arg, ...(plan.moreArgsSql ?? [])].join(', '), filter, true),
    combineSql: (s, p) => (udf.combineStrict ? `CASE WHEN ${s} IS NULL THEN ${p} WHEN ${p} IS NULL THEN ${s} ELSE ${udf.combineFn}(${s}, ${p}) END` : `${udf.combineFn}(${s}, ${p})`),
    finalSql: (s) => (udf.finalFn ? `${udf.finalFn}(${[s, ...(udf.finalExtraArgs ?? [])].join(', ')})` : s),
  };
}

/** A sketch aggregate as the planner sees it: its result column is read as is (the engine keeps it current). */
function sketchColumnImpl(plan: AggregatePlan): AggregateImpl {
  const result = sketchAggregate(plan).resultType;
  return {
    stateType: result,
    partialSql: () => {
      throw new Error(`${plan.fn} is merged by the engine`);
    },
    combineSql: (s) => s,
    finalSql: (s) => s,
  };
}

/**
 * An aggregate whose partial state is the aggregate itself over the batch,
 * merged by `combine`, computed by the store. Order-sensitive ones (string_agg,
 * array_agg) take the rows in arrival order, so results follow the stream.
 */
function storeOnly(plan: AggregatePlan, stateType: string, combine: (stored: string, partial: string) => string, inArrivalOrder = false): AggregateImpl {
  return {
    stateType,
    partialSql: (arg, filter) => call(plan.fn, [arg, ...(plan.extraArgs ?? [])].join(', '), filter, inArrivalOrder),
    combineSql: combine,
    finalSql: (s) => s,
  };
}

/**
 * array_agg(DISTINCT x) keeps the set of values seen, sorted as PostgreSQL
 * sorts them for DISTINCT (so the result is PostgreSQL's own).
 */
function distinctArrayImpl(plan: AggregatePlan): AggregateImpl {
  return {
    stateType: `${plan.arg?.type ?? 'text'}[]`,
    partialSql: (arg, filter) => `array_agg(DISTINCT ${arg} ORDER BY ${arg})${filter ? ` FILTER (WHERE ${filter})` : ''}`,
    combineSql: distinctUnionSql,
    finalSql: (s) => s,
  };
}

/**
 * json_agg/jsonb_agg keep their elements as a json[]/jsonb[] and aggregate
 * them at read time, so the result prints exactly as PostgreSQL prints it.
 */
function arrayOfJsonImpl(plan: AggregatePlan): AggregateImpl {
  const element = plan.fn === 'json_agg' ? 'json' : 'jsonb';
  return {
    stateType: `${element}[]`,
    partialSql: (arg, filter) => call('array_agg', `to_${element}(${arg})`, filter, true),
    combineSql: (s, p) => `${s} || ${p}`,
    finalSql: (s) => `(SELECT ${plan.fn}(e ORDER BY n) FROM unnest(${s}) WITH ORDINALITY AS u(e, n))`,
  };
}

/**
 * json_object_agg keeps its result as the state: PostgreSQL prints it as
 * `{ "k" : v, "k" : v }` and keeps duplicate keys, so two states join by
 * splicing their texts (the state is never `{}`: over no rows it is NULL).
 * NULL keys fail in the store with PostgreSQL's own error.
 */
function jsonObjectImpl(plan: AggregatePlan): AggregateImpl {
  return {
    stateType: 'json',
    partialSql: (arg, filter) => call('json_object_agg', `${arg}, ${plan.secondArgSql}`, filter, true),
    combineSql: (s, p) =>
      `CASE WHEN ${s} IS NULL THEN ${p} WHEN ${p} IS NULL THEN ${s} ELSE ${jsonObjectSql(`${jsonObjectMembersSql(s)} || ', ' || ${jsonObjectMembersSql(p)}`)} END`,
    finalSql: (s) => s,
  };
}

/** jsonb_object_agg keeps the last value of each key, and so does jsonb's `||`. */
function jsonbObjectImpl(plan: AggregatePlan): AggregateImpl {
  return {
    stateType: 'jsonb',
    partialSql: (arg, filter) => call('jsonb_object_agg', `${arg}, ${plan.secondArgSql}`, filter, true),
    combineSql: (s, p) => `coalesce(${s} || ${p}, ${s}, ${p})`,
    finalSql: (s) => s,
  };
}

/**
 * exact_count_distinct keeps the distinct non-null values, sorted and
 * compared as PostgreSQL's DISTINCT compares them, so the count equals
 * count(DISTINCT x).
 */
function exactCountDistinctImpl(plan: AggregatePlan): AggregateImpl {
  // An array of array values would be one multi-dimensional array, which unnest flattens.
  if (plan.arg?.typeName.startsWith('_')) throw unsupportedArgument(plan);
  const notNull = (arg: string, filter?: string) => `${arg} IS NOT NULL${filter ? ` AND (${filter})` : ''}`;
  return {
    stateType: `${plan.arg?.type ?? 'text'}[]`,
    partialSql: (arg, filter) => `array_agg(DISTINCT ${arg} ORDER BY ${arg}) FILTER (WHERE ${notNull(arg, filter)})`,
    combineSql: distinctUnionSql,
    finalSql: (s) => `coalesce(cardinality(${s}), 0)::bigint`,
  };
}

/** The sorted union of two sorted sets of distinct values (either may be NULL). */
function distinctUnionSql(s: string, p: string): string {
  return `CASE WHEN ${s} IS NULL THEN ${p} WHEN ${p} IS NULL THEN ${s} ELSE ARRAY(SELECT DISTINCT e FROM unnest(${s} || ${p}) AS u(e) ORDER BY e) END`;
}

/**
 * A hypothetical-set aggregate's tests for one row against the constants
 * v1, …, as PostgreSQL sorts them: the row's x1, … sorts before them, or ties
 * with them (lexicographically, each column in its own direction). Each pair
 * is compared in its common type; NULLs sort after every value (ASC's
 * default, NULLS LAST) or before (DESC's default, NULLS FIRST) and tie with
 * each other.
 */
function hypotheticalTests(plan: AggregatePlan): { before(x: string): string; equal(x: string): string } {
  const h = plan.hypothetical;
  if (!h) throw new SqlError(SqlState.internalError, `${plan.fn} has no hypothetical argument`);
  const columns = (x: string) => [{ ...h, sql: x }, ...(h.more ?? [])].map(columnTests);
  return {
    before: (x) => {
      const cs = columns(x);
      // Sorts before at column i, tying with every column before it.
      const terms = cs.map((c, i) => [...cs.slice(0, i).map((p) => p.equal), c.before].join(' AND '));
      return terms.length === 1 ? terms[0] : terms.map((t) => `(${t})`).join(' OR ');
    },
    equal: (x) => columns(x).map((c) => c.equal).join(' AND '),
  };
}

function columnTests(c: HypotheticalColumn & { sql: string }): { before: string; equal: string } {
  const x = `(${c.sql})`;
  if (c.value === 'NULL') return { before: c.nullsFirst ? 'false' : `${x} IS NOT NULL`, equal: `${x} IS NULL` };
  const op = c.descending ? '>' : '<';
  return { before: `coalesce(${x}::${c.type} ${op} ${c.value}, ${c.nullsFirst})`, equal: `coalesce(${x}::${c.type} = ${c.value}, false)` };
}

function both(test: string, filter: string | undefined): string {
  return filter ? `(${test}) AND (${filter})` : test;
}

/**
 * rank, percent_rank and cume_dist(v) WITHIN GROUP (ORDER BY x): the state
 * is {rows sorting before v, rows tying with v, rows}, summed when merged,
 * so they are exact. Finished as PostgreSQL does: rank = before + 1,
 * percent_rank = before / rows (0 over no rows), cume_dist = (before + ties
 * + 1) / (rows + 1).
 */
function hypotheticalRankImpl(plan: AggregatePlan): AggregateImpl {
  const { before, equal } = hypotheticalTests(plan);
  const finals: Record<string, (s: string) => string> = {
    rank: (s) => `((${s})[1] + 1)`,
    percent_rank: (s) => `CASE WHEN (${s})[3] = 0 THEN 0::float8 ELSE (${s})[1]::float8 / (${s})[3]::float8 END`,
    cume_dist: (s) => `((${s})[1] + (${s})[2] + 1)::float8 / ((${s})[3] + 1)::float8`,
  };
  return {
    stateType: 'bigint[]',
    partialSql: (arg, filter) =>
      `ARRAY[${call('count', '*', both(before(arg), filter))}, ${call('count', '*', both(equal(arg), filter))}, ${call('count', '*', filter)}]`,
    combineSql: (s, p) => `ARRAY[${s}[1] + ${p}[1], ${s}[2] + ${p}[2], ${s}[3] + ${p}[3]]`,
    finalSql: finals[plan.fn],
  };
}

/**
 * dense_rank(v) WITHIN GROUP (ORDER BY x) = 1 + the number of distinct
 * values sorting before v, so the state is the exact set of them (a sorted
 * array of x's common type with v; one NULL element stands for the NULLs when
 * they sort first). Memory: the set lives in the group's `_mrel` row and
 * grows with the number of distinct x below v in that group (unbounded, like
 * exact_count_distinct), and every batch rewrites it for the groups it
 * touches (a sort of the stored and new values): fine for thousands of
 * distinct values per group, costly for millions.
 */
function hypotheticalDenseRankImpl(plan: AggregatePlan): AggregateImpl {
  // An array of array values would be one multi-dimensional array, which unnest flattens.
  if (plan.arg?.typeName.startsWith('_')) throw unsupportedArgument(plan);
  const { before } = hypotheticalTests(plan);
  const h = plan.hypothetical as NonNullable<AggregatePlan['hypothetical']>;
  const more = h.more;
  if (more) {
    // Several sort columns: the distinct tuples as jsonb arrays, which compare equal when their values do (1.0 and 1).
    const tuple = (arg: string) => `jsonb_build_array(${[{ ...h, sql: arg }, ...more].map((c) => `(${c.sql})::${c.type}`).join(', ')})`;
    return {
      stateType: 'jsonb[]',
      partialSql: (arg, filter) => `array_agg(DISTINCT ${tuple(arg)} ORDER BY ${tuple(arg)}) FILTER (WHERE ${both(before(arg), filter)})`,
      combineSql: distinctUnionSql,
      finalSql: (s) => `(coalesce(cardinality(${s}), 0) + 1)::bigint`,
    };
  }
  const type = h.type;
  return {
    stateType: `${type}[]`,
    partialSql: (arg, filter) => `array_agg(DISTINCT (${arg})::${type} ORDER BY (${arg})::${type}) FILTER (WHERE ${both(before(arg), filter)})`,
    combineSql: distinctUnionSql,
    finalSql: (s) => `(coalesce(cardinality(${s}), 0) + 1)::bigint`,
  };
}

/**
 * keyed_max(key, value) / keyed_min(key, value): the value of the row with
 * the largest (smallest) key, compared by PostgreSQL in their own types (and
 * collations). The state is {key, value} as text (the two have different
 * types), cast back to compare and when read. NULL keys are ignored; on equal
 * keys a non-NULL value beats NULL, then the larger (smaller) value, so the
 * result depends neither on arrival nor on merge order.
 */
function keyedImpl(plan: AggregatePlan): AggregateImpl {
  const keyType = plan.arg?.type ?? 'text';
  const valueType = plan.secondArg?.type ?? 'text';
  const value = plan.secondArgSql as string;
  const dir = plan.fn === 'keyed_max' ? 'DESC' : 'ASC';
  const beats = plan.fn === 'keyed_max' ? '>' : '<';
  return {
    stateType: 'text[]',
    partialSql: (arg, filter) => {
      const order = `ORDER BY ${arg} ${dir}, ${value} ${dir} NULLS LAST`;
      const rows = `FILTER (WHERE (${arg}) IS NOT NULL${filter ? ` AND (${filter})` : ''})`;
      return `ARRAY[(array_agg((${arg})::text ${order}) ${rows})[1], (array_agg((${value})::text ${order}) ${rows})[1]]`;
    },
    combineSql: (s, p) => {
      const key = (x: string) => `((${x})[1])::${keyType}`;
      const val = (x: string) => `((${x})[2])::${valueType}`;
      return (
        `CASE WHEN (${s})[1] IS NULL THEN ${p} WHEN (${p})[1] IS NULL THEN ${s} WHEN ${key(p)} ${beats} ${key(s)} THEN ${p} ` +
        `WHEN ${key(p)} = ${key(s)} AND (${p})[2] IS NOT NULL AND ((${s})[2] IS NULL OR ${val(p)} ${beats} ${val(s)}) THEN ${p} ELSE ${s} END`
      );
    },
    finalSql: (s) => `((${s})[2])::${valueType}`,
  };
}

/**
 * combine((delta).col) over output_of('v'): the states of v's aggregate,
 * merged within a batch as combine() merges them, then across batches and
 * finished as v does (see sql/combine-delta.ts).
 */
function deltaCombineImpl(plan: AggregatePlan): AggregateImpl {
  const upstream = plan.combines;
  if (!upstream) throw new SqlError(SqlState.internalError, 'combine() has no aggregate to combine');
  const impl = aggregateImpl(upstream);
  return {
    stateType: impl.stateType,
    partialSql: (arg) => {
      const merged = reaggregateSql(upstream, impl.stateType, arg, 'sluice_arrival_order');
      if (!merged) throw new SqlError(SqlState.featureNotSupported, `combine((delta).${upstream.column}) of ${upstream.fn} is not supported`);
      return merged;
    },
    combineSql: impl.combineSql,
    finalSql: impl.finalSql,
  };
}

/**
 * first_values(n, v): the n smallest non-NULL values, sorted as PostgreSQL
 * sorts them (duplicates kept), as an array of v's type; NULL over no values.
 */
function firstValuesImpl(plan: AggregatePlan): AggregateImpl {
  // An array of array values would be one multi-dimensional array.
  if (plan.arg?.typeName.startsWith('_')) throw unsupportedArgument(plan);
  const n = Number(plan.extraArgs?.[0] ?? 1);
  return {
    stateType: `${plan.arg?.type ?? 'text'}[]`,
    // NOT IS NULL keeps a tuple with some NULL fields (first_values of several values), which IS NOT NULL would not.
    partialSql: (arg, filter) => `(array_agg(${arg} ORDER BY ${arg}) FILTER (WHERE NOT ((${arg}) IS NULL)${filter ? ` AND (${filter})` : ''}))[1:${n}]`,
    combineSql: (s, p) => `CASE WHEN ${s} IS NULL THEN ${p} WHEN ${p} IS NULL THEN ${s} ELSE ${smallestSql(`${s} || ${p}`, n)} END`,
    finalSql: (s) => s,
  };
}

/**
 * PipelineDB aggregates that PostgreSQL lacks, created in the store with the
 * catalog: a continuous view's query is typed by PostgreSQL, and plain
 * queries over tables may call them too. exact_count_distinct collects every
 * value and counts the distinct ones at the end, as count(DISTINCT x) would.
 */
export const storeAggregatesSql = `
CREATE OR REPLACE FUNCTION sluice.exact_count_distinct_final(anycompatiblearray) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT count(DISTINCT e) FROM unnest($1) AS u(e) $$;
CREATE OR REPLACE AGGREGATE public.exact_count_distinct(anycompatible)
  (sfunc = array_append, stype = anycompatiblearray, finalfunc = sluice.exact_count_distinct_final, initcond = '{}');
-- set_agg(x): the sorted distinct values (array_agg(DISTINCT x)); set_cardinality(set) their number.
CREATE OR REPLACE FUNCTION sluice.set_agg_final(anycompatiblearray) RETURNS anycompatiblearray
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ARRAY(SELECT DISTINCT e FROM unnest($1) AS u(e) ORDER BY e) $$;
CREATE OR REPLACE AGGREGATE public.set_agg(anycompatible)
  (sfunc = array_append, stype = anycompatiblearray, finalfunc = sluice.set_agg_final, initcond = '{}');
CREATE OR REPLACE FUNCTION public.set_cardinality(anyarray) RETURNS bigint
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT coalesce(cardinality($1), 0)::bigint $$;
-- first_values(n, v): the n smallest non-NULL values, sorted.
CREATE OR REPLACE FUNCTION sluice.first_values_sfunc(anycompatiblearray, integer, anycompatible) RETURNS anycompatiblearray
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
  $$ SELECT CASE WHEN $3 IS NULL THEN $1 ELSE ARRAY(SELECT e FROM unnest($1 || $3) AS u(e) ORDER BY e LIMIT $2) END $$;
CREATE OR REPLACE AGGREGATE public.first_values(integer, anycompatible)
  (sfunc = sluice.first_values_sfunc, stype = anycompatiblearray);
-- keyed_max/keyed_min(key, value): the value of the largest/smallest key, as keyedImpl computes it in continuous views: NULL
-- keys ignored; on equal keys a non-NULL value beats NULL, then the larger/smaller value. Key and value have unrelated types,
-- so the state is {key, value} as text, each read back into its own type (k%TYPE, v%TYPE) to be compared there.
${['max', 'min']
  .map(
    (mode) => `CREATE OR REPLACE FUNCTION sluice.keyed_${mode}_sfunc(state text[], k anyelement, v anycompatible) RETURNS text[]
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  best_k k%TYPE;
  best_v v%TYPE;
BEGIN
  IF k IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    RETURN ARRAY[k::text, v::text];
  END IF;
  best_k := state[1];
  IF k ${mode === 'max' ? '>' : '<'} best_k THEN
    RETURN ARRAY[k::text, v::text];
  END IF;
  IF k = best_k AND v IS NOT NULL THEN
    best_v := state[2];
    IF best_v IS NULL OR v ${mode === 'max' ? '>' : '<'} best_v THEN
      RETURN ARRAY[k::text, v::text];
    END IF;
  END IF;
  RETURN state;
END $$;`,
  )
  .join('\n')}
CREATE OR REPLACE FUNCTION sluice.keyed_final(state text[], k anyelement, v anycompatible) RETURNS anycompatible
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  result v%TYPE := state[2];
BEGIN
  RETURN result;
END $$;
CREATE OR REPLACE AGGREGATE public.keyed_max(anyelement, anycompatible)
  (sfunc = sluice.keyed_max_sfunc, stype = text[], finalfunc = sluice.keyed_final, finalfunc_extra, parallel = safe);
CREATE OR REPLACE AGGREGATE public.keyed_min(anyelement, anycompatible)
  (sfunc = sluice.keyed_min_sfunc, stype = text[], finalfunc = sluice.keyed_final, finalfunc_extra, parallel = safe);
`;

/**
 * corr, covar_* and regr_* over pairs (Y, X): the state is PostgreSQL's own
 * {N, Σx, Sxx, Σy, Syy, Sxy}, computed for a batch by PostgreSQL's regr_*
 * aggregates, merged with float8_regr_combine and finished with the same
 * final function PostgreSQL uses.
 */
function regressionImpl(plan: AggregatePlan): AggregateImpl {
  return {
    stateType: 'double precision[]',
    partialSql: (arg, filter) => {
      const y = `(${arg})::float8`;
      const x = `(${plan.secondArgSql})::float8`;
      const pair = `${y}, ${x}`;
      const both = `${y} IS NOT NULL AND ${x} IS NOT NULL${filter ? ` AND (${filter})` : ''}`;
      return `ARRAY[${call('regr_count', pair, filter)}::float8, coalesce(${call('sum', x, both)}, 0), coalesce(${call('regr_sxx', pair, filter)}, 0), coalesce(${call('sum', y, both)}, 0), coalesce(${call('regr_syy', pair, filter)}, 0), coalesce(${call('regr_sxy', pair, filter)}, 0)]`;
    },
    combineSql: (s, p) => `float8_regr_combine(${s}, ${p})`,
    finalSql: (s) => `float8_${plan.fn}(${s})`,
  };
}

const varianceFinals: Record<string, { float: string; numeric: (n: string, sx: string, sxx: string) => string }> = {
  var_samp: { float: 'float8_var_samp', numeric: (n, sx, sxx) => `CASE WHEN ${n} > 1 THEN greatest((${n} * ${sxx} - ${sx} * ${sx}), 0) / (${n} * (${n} - 1)) END` },
  variance: { float: 'float8_var_samp', numeric: (n, sx, sxx) => `CASE WHEN ${n} > 1 THEN greatest((${n} * ${sxx} - ${sx} * ${sx}), 0) / (${n} * (${n} - 1)) END` },
  var_pop: { float: 'float8_var_pop', numeric: (n, sx, sxx) => `CASE WHEN ${n} > 0 THEN greatest((${n} * ${sxx} - ${sx} * ${sx}), 0) / (${n} * ${n}) END` },
  stddev: { float: 'float8_stddev_samp', numeric: (n, sx, sxx) => `CASE WHEN ${n} > 1 THEN sqrt(greatest((${n} * ${sxx} - ${sx} * ${sx}), 0) / (${n} * (${n} - 1))) END` },
  stddev_samp: { float: 'float8_stddev_samp', numeric: (n, sx, sxx) => `CASE WHEN ${n} > 1 THEN sqrt(greatest((${n} * ${sxx} - ${sx} * ${sx}), 0) / (${n} * (${n} - 1))) END` },
  stddev_pop: { float: 'float8_stddev_pop', numeric: (n, sx, sxx) => `CASE WHEN ${n} > 0 THEN sqrt(greatest((${n} * ${sxx} - ${sx} * ${sx}), 0) / (${n} * ${n})) END` },
};

/**
 * Variance and standard deviation. Over floats the state is PostgreSQL's own
 * transition array {N, Sx, Sxx} (Youngs–Cramer), merged with float8_combine
 * and finished with PostgreSQL's final functions. Over exact types the state
 * is {N, Σx, Σx²} in numeric, finished with the same formula PostgreSQL uses.
 */
function varianceImpl(plan: AggregatePlan, typeName: string): AggregateImpl {
  if (!numericTypes.has(typeName)) throw unsupportedArgument(plan);
  const final = varianceFinals[plan.fn];
  if (floatTypes.has(typeName)) {
    return {
      stateType: 'double precision[]',
      partialSql: (arg, filter) => {
        const x = `(${arg})::float8`;
        return `ARRAY[${call('count', arg, filter)}::float8, coalesce(${call('sum', x, filter)}, 0), coalesce(${call('var_pop', x, filter)} * ${call('count', arg, filter)}, 0)]`;
      },
      combineSql: (s, p) => `float8_combine(${s}, ${p})`,
      finalSql: (s) => `${final.float}(${s})`,
    };
  }
  return {
    stateType: 'numeric[]',
    partialSql: (arg, filter) => {
      const x = `(${arg})::numeric`;
      return `ARRAY[${call('count', arg, filter)}::numeric, coalesce(${call('sum', x, filter)}, 0), coalesce(${call('sum', `${x} * ${x}`, filter)}, 0)]`;
    },
    combineSql: (s, p) => `ARRAY[${s}[1] + ${p}[1], ${s}[2] + ${p}[2], ${s}[3] + ${p}[3]]`,
    finalSql: (s) => final.numeric(`(${s})[1]`, `(${s})[2]`, `(${s})[3]`),
  };
}

function unsupportedArgument(plan: AggregatePlan): SqlError {
  return new SqlError(SqlState.featureNotSupported, `${plan.fn}(${plan.arg?.type ?? ''}) is not supported in a continuous view yet`);
}

const countRows: Accumulator = {
  init: () => 0,
  add: (s) => (s as number) + 1,
  text: (s) => String(s),
};

const countValues: Accumulator = {
  init: () => 0,
  add: (s, v) => (v === null ? s : (s as number) + 1),
  text: (s) => String(s),
};

function sumImpl(typeName: string, plan: AggregatePlan): AggregateImpl {
  const stateType = sumStateType(typeName);
  if (!stateType) throw unsupportedArgument(plan);
  return {
    stateType,
    partialSql: (arg, filter) => call('sum', arg, filter),
    // NULL + x is NULL, so this keeps whichever side has seen a value.
    combineSql: (s, p) => `coalesce(${s} + ${p}, ${s}, ${p})`,
    finalSql: (s) => s,
    accumulator: sumAccumulator(typeName),
  };
}

function sumStateType(typeName: string): string | undefined {
  if (integerTypes.has(typeName)) return 'bigint';
  if (typeName === 'int8' || typeName === 'numeric') return 'numeric';
  if (typeName === 'float4') return 'real';
  if (typeName === 'float8') return 'double precision';
  if (typeName === 'money') return 'money';
  if (typeName === 'interval') return 'interval';
  return undefined;
}

/** Adds two non-null values of a numeric type the way PostgreSQL's `+` would for the sum's state type. */
function adder(typeName: string): ((a: unknown, b: Value) => unknown) | undefined {
  // A batch holds at most 2^16 rows, so an int4 partial sum stays far below 2^53.
  if (integerTypes.has(typeName)) return (a, b) => (a as number) + (b as number);
  if (typeName === 'int8') return (a, b) => (a as bigint) + (b as bigint);
  if (typeName === 'float8') return (a, b) => (a as number) + (b as number);
  if (typeName === 'float4') return (a, b) => Math.fround((a as number) + (b as number));
  if (typeName === 'numeric') return (a, b) => addNumeric(a as Numeric, parseNumeric(b as string));
  return undefined;
}

function firstValue(typeName: string, v: Value): unknown {
  return typeName === 'numeric' ? parseNumeric(v as string) : v;
}

function stateText(typeName: string, s: unknown): string {
  if (typeName === 'numeric') return numericToString(s as Numeric);
  if (floatTypes.has(typeName)) return formatFloat(s as number);
  return String(s);
}

function sumAccumulator(typeName: string): Accumulator | undefined {
  const add = adder(typeName);
  if (!add) return undefined;
  return {
    init: () => null,
    add: (s, v) => (v === null ? s : s === null ? firstValue(typeName, v) : add(s, v)),
    text: (s) => (s === null ? null : stateText(typeName, s)),
  };
}

/** avg keeps {count, sum}: numeric[] for exact types (PostgreSQL's avg is numeric), float8[] for floats. */
function avgImpl(typeName: string, plan: AggregatePlan): AggregateImpl {
  if (typeName === 'interval') return intervalAvgImpl();
  if (!numericTypes.has(typeName)) throw unsupportedArgument(plan);
  const float = floatTypes.has(typeName);
  const stateType = float ? 'double precision[]' : 'numeric[]';
  return {
    stateType,
    partialSql: (arg, filter) =>
      float
        ? `ARRAY[${call('count', arg, filter)}::float8, coalesce(${call('sum', `(${arg})::float8`, filter)}, 0)]`
        : `ARRAY[${call('count', arg, filter)}::numeric, coalesce(${call('sum', arg, filter)}, 0)::numeric]`,
    combineSql: (s, p) => `ARRAY[${s}[1] + ${p}[1], ${s}[2] + ${p}[2]]`,
    finalSql: (s) => `CASE WHEN (${s})[1] = 0 THEN NULL ELSE (${s})[2] / (${s})[1] END`,
    accumulator: avgAccumulator(float ? 'float8' : typeName),
  };
}

/**
 * avg(interval) keeps {sum, count} as an interval[] (the count as that many
 * microseconds, exact up to 2^63 rows) and ends as PostgreSQL's does: sum / count.
 */
function intervalAvgImpl(): AggregateImpl {
  const count = (s: string) => `(extract(epoch FROM (${s})[2]) * 1000000)`;
  return {
    stateType: 'interval[]',
    partialSql: (arg, filter) => `ARRAY[coalesce(${call('sum', arg, filter)}, interval '0'), ${call('count', arg, filter)} * interval '1 microsecond']`,
    combineSql: (s, p) => `ARRAY[${s}[1] + ${p}[1], ${s}[2] + ${p}[2]]`,
    finalSql: (s) => `CASE WHEN ${count(s)} = 0 THEN NULL ELSE (${s})[1] / ${count(s)}::float8 END`,
  };
}

interface AvgState {
  count: number;
  sum: unknown;
}

function avgAccumulator(typeName: string): Accumulator | undefined {
  const add = adder(typeName);
  if (!add) return undefined;
  return {
    init: (): AvgState => ({ count: 0, sum: null }),
    add: (s, v) => {
      if (v === null) return s;
      const state = s as AvgState;
      state.sum = state.sum === null ? firstValue(typeName, v) : add(state.sum, v);
      state.count++;
      return state;
    },
    text: (s) => {
      const state = s as AvgState;
      return `{${state.count},${state.sum === null ? 0 : stateText(typeName, state.sum)}}`;
    },
  };
}

function extremeImpl(fn: 'min' | 'max', typeName: string, plan: AggregatePlan): AggregateImpl {
  const pick = fn === 'min' ? 'LEAST' : 'GREATEST';
  return {
    stateType: plan.arg?.type ?? 'text',
    partialSql: (arg, filter) => call(fn, arg, filter),
    // LEAST/GREATEST ignore NULLs, exactly what merging two partial extremes needs.
    combineSql: (s, p) => `${pick}(${s}, ${p})`,
    finalSql: (s) => s,
    accumulator: extremeAccumulator(fn, typeName),
  };
}

/** PostgreSQL orders NaN above every other float. */
function compareFloat(a: number, b: number): number {
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparer(typeName: string): ((a: Value, b: Value) => number) | undefined {
  if (integerTypes.has(typeName) || floatTypes.has(typeName)) return (a, b) => compareFloat(a as number, b as number);
  if (typeName === 'int8') return (a, b) => ((a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0);
  return undefined;
}

function extremeAccumulator(fn: 'min' | 'max', typeName: string): Accumulator | undefined {
  const compare = comparer(typeName);
  if (!compare) return undefined;
  const sign = fn === 'min' ? -1 : 1;
  return {
    init: () => null,
    add: (s, v) => (v === null ? s : s === null || compare(v, s as Value) * sign > 0 ? v : s),
    text: (s) => (s === null ? null : stateText(typeName, s)),
  };
}
