import { jsonObjectMembersSql, jsonObjectSql, smallestSql } from './aggregate-sql.ts';
import { quoteIdent } from './sql-text.ts';
import { regressionAggregates, varianceAggregates, type AggregatePlan } from './view-plan.ts';

/**
 * SQL that merges many stored states of one aggregate into one (an aggregate
 * over the state column), for reading a sliding window: the `_mrel` keeps a
 * row per group and time bucket, and reading the view merges the buckets
 * still inside the window. Undefined when the state cannot be merged in SQL
 * (sketches the engine keeps).
 *
 * `order` orders the buckets for order-sensitive aggregates (string_agg…).
 */
export function reaggregateSql(plan: AggregatePlan, stateType: string, state: string, order: string): string | undefined {
  if (plan.sketch) return sketchReaggregateSql(plan, state, order);
  if (plan.fn === 'combine') return plan.combines && reaggregateSql(plan.combines, stateType, state, order);
  if (plan.userDefined) return `${plan.userDefined.combineAggregate}(${state} ORDER BY ${order})`;
  const floatArgument = plan.arg?.typeName === 'float4' || plan.arg?.typeName === 'float8';
  if (regressionAggregates.has(plan.fn)) return `sluice.float8_regr_combine_agg(${state})`;
  if (varianceAggregates.has(plan.fn)) {
    return floatArgument ? `sluice.float8_combine_agg(${state})` : `ARRAY[sum((${state})[1]), sum((${state})[2]), sum((${state})[3])]`;
  }
  switch (plan.fn) {
    case 'count':
    case 'regr_count':
      return `sum(${state})::bigint`;
    case 'sum':
      return `sum(${state})::${stateType}`;
    case 'avg':
      return `ARRAY[sum((${state})[1]), sum((${state})[2])]`;
    case 'min':
    case 'max':
    case 'bool_and':
    case 'bool_or':
    case 'bit_and':
    case 'bit_or':
      return `${plan.fn}(${state})`;
    case 'every':
      return `bool_and(${state})`;
    case 'string_agg':
      return `string_agg(${state}, ${plan.extraArgs?.[0] ?? "''"} ORDER BY ${order})`;
    case 'set_agg':
      return `ARRAY(SELECT DISTINCT e FROM unnest(sluice.array_cat_agg(${state})) AS u(e) ORDER BY e)`;
    case 'array_agg':
      return plan.distinct
        ? `ARRAY(SELECT DISTINCT e FROM unnest(sluice.array_cat_agg(${state})) AS u(e) ORDER BY e)`
        : `sluice.array_cat_agg(${state} ORDER BY ${order})`;
    case 'json_agg':
    case 'jsonb_agg':
      return `sluice.array_cat_agg(${state} ORDER BY ${order})`;
    case 'json_object_agg':
      return jsonObjectSql(`string_agg(${jsonObjectMembersSql(state)}, ', ' ORDER BY ${order})`);
    case 'jsonb_object_agg':
      return `sluice.jsonb_concat_agg(${state} ORDER BY ${order})`;
    case 'exact_count_distinct':
    case 'dense_rank':
      return `ARRAY(SELECT DISTINCT e FROM unnest(sluice.array_cat_agg(${state})) AS u(e) ORDER BY e)`;
    case 'keyed_max':
    case 'keyed_min': {
      // The state {key, value} with the greatest (least) key, then value, as the upsert keeps it.
      const dir = plan.fn === 'keyed_max' ? 'DESC' : 'ASC';
      const order = `ORDER BY ((${state})[1])::${plan.arg?.type ?? 'text'} ${dir}, ((${state})[2])::${plan.secondArg?.type ?? 'text'} ${dir} NULLS LAST`;
      const rows = `FILTER (WHERE (${state})[1] IS NOT NULL)`;
      return `ARRAY[(array_agg((${state})[1] ${order}) ${rows})[1], (array_agg((${state})[2] ${order}) ${rows})[1]]`;
    }
    case 'first_values':
      return smallestSql(`sluice.array_cat_agg(${state})`, plan.extraArgs?.[0] ?? 1);
    case 'rank':
    case 'percent_rank':
    case 'cume_dist':
      return `ARRAY[sum((${state})[1]), sum((${state})[2]), sum((${state})[3])]::bigint[]`;
    default:
      return undefined;
  }
}

/** SQL merging a named sketch's states (its column is the state), in the view's order (bucket_agg keeps the latest). */
const namedSketchMerges: Record<string, string> = {
  hll_agg: 'public.hll_union_agg',
  bloom_agg: 'public.bloom_union_agg',
  freq_agg: 'public.freq_merge_agg',
  topk_agg: 'sluice.topk_merge_agg',
  dist_agg: 'sluice.tdigest_merge_agg',
  bucket_agg: 'sluice.bucket_merge_agg',
};

/**
 * Sketches merged in SQL (engine/sketch-functions.ts): a named sketch's
 * state column as a merged state; count(DISTINCT) and percentile_cont as
 * their result over the merged sketch in their state column.
 * percentile_disc is not merged in SQL.
 */
function sketchReaggregateSql(plan: AggregatePlan, state: string, order: string): string | undefined {
  const sketch = plan.sketch as NonNullable<AggregatePlan['sketch']>;
  if (sketch.named) return namedSketchMerges[plan.fn] && `${namedSketchMerges[plan.fn]}(${state} ORDER BY ${order})`;
  const stateColumn = quoteIdent(plan.stateColumn as string);
  if (sketch.kind === 'hll') return `public.hll_cardinality(public.hll_union_agg(${stateColumn}))::bigint`;
  if (sketch.kind !== 'tdigest' || plan.fn !== 'percentile_cont') return undefined;
  const merged = `sluice.tdigest_merge_agg(${stateColumn})`;
  const quantile = (q: number | null) => (q === null ? 'NULL::float8' : `public.dist_quantile(${merged}, ${sketch.descending ? 1 - q : q})`);
  const fractions = sketch.fractions ?? [];
  return sketch.array ? `ARRAY[${fractions.map(quantile).join(', ')}]::float8[]` : quantile(fractions[0] ?? null);
}

/** The aggregates reaggregateSql relies on, created in the store with the catalog. */
export const reaggregateFunctionsSql = `
CREATE OR REPLACE AGGREGATE sluice.array_cat_agg(anycompatiblearray) (sfunc = array_cat, stype = anycompatiblearray);
CREATE OR REPLACE AGGREGATE sluice.float8_combine_agg(float8[]) (sfunc = float8_combine, stype = float8[], initcond = '{0,0,0}');
-- jsonb's || keeps the right-hand value of a key, so concatenating in order keeps the last one.
CREATE OR REPLACE AGGREGATE sluice.jsonb_concat_agg(jsonb) (sfunc = jsonb_concat, stype = jsonb);
CREATE OR REPLACE AGGREGATE sluice.float8_regr_combine_agg(float8[]) (sfunc = float8_regr_combine, stype = float8[], initcond = '{0,0,0,0,0,0}');
`;
