import { arrivalOrderColumn } from './aggregates.ts';
import type { RowBatch } from './batch.ts';
import { arrayLiteral, quoteIdent } from './sql-text.ts';
import { toPgText } from './values/index.ts';
import type { Stream } from './stream.ts';
import type { ViewPlan } from './view-plan.ts';

/**
 * How SQL evaluated by the store reads a batch of stream rows: `$1…$n` are
 * the view's stream columns as arrays (or `$1` the row count when it reads
 * none), unnested with their arrival order. When the view's FROM joins the
 * stream with tables or wraps it in sub-selects, the batch is bound to the
 * stream's own name in a CTE, so that FROM clause runs unchanged.
 */
export function batchSource(plan: ViewPlan, stream: Stream): { withClause: string; from: string } {
  const alias = quoteIdent(plan.stream.alias);
  const rows = batchRowsSql(plan, stream);
  const sets = groupingSetsFromSql(plan);
  if (!plan.from) return { withClause: '', from: `${rows} AS ${alias}${sets}` };
  return { withClause: `WITH ${quoteIdent(plan.stream.name)} AS (SELECT * FROM ${rows} AS batch) `, from: `${plan.from}${sets}` };
}

/** A grouping-sets view's grouping keys read the number of the set a row is aggregated for here. */
export const groupingSetNumberSql = 'sluice_grouping_sets.sluice_grouping_set';

/** A grouping-sets view reads each batch row once per grouping set: the FROM item numbering the sets. */
function groupingSetsFromSql(plan: ViewPlan): string {
  if (!plan.groupingSets) return '';
  return `, generate_series(0, ${plan.groupingSets.sets.length - 1}) AS sluice_grouping_sets(sluice_grouping_set)`;
}

/**
 * The batch as a sub-select. The arrays travel as text[] and each element is
 * cast to its column's type: unnest would expand a composite element (the
 * old/new rows of an output stream) into its fields.
 */
function batchRowsSql(plan: ViewPlan, stream: Stream): string {
  if (plan.columns.length === 0) return `(SELECT n AS ${arrivalOrderColumn} FROM generate_series(1, $1::int) AS g(n))`;
  const positions = plan.columns.map((c) => stream.position(c) ?? -1);
  const casts = plan.columns.map((c, i) => `u.c${i + 1}::${stream.columns[positions[i]].type} AS ${quoteIdent(c)}`);
  const arrays = plan.columns.map((_, i) => `$${i + 1}::text[]`);
  const names = [...plan.columns.map((_, i) => `c${i + 1}`), arrivalOrderColumn];
  return `(SELECT ${[...casts, `u.${arrivalOrderColumn}`].join(', ')} FROM unnest(${arrays.join(', ')}) WITH ORDINALITY AS u(${names.join(', ')}))`;
}

/** The parameters batchSource's SQL reads: each of the view's stream columns as a text array (or the row count). */
export function batchParams(plan: ViewPlan, stream: Stream, batch: RowBatch): string[] {
  if (plan.columns.length === 0) return [String(batch.length)];
  return plan.columns.map((name) => {
    const position = stream.position(name) ?? -1;
    const typeName = stream.columns[position].typeName;
    const values = batch.columns[position];
    const texts = new Array<string | null>(values.length);
    for (let r = 0; r < values.length; r++) {
      const v = values[r];
      texts[r] = v === null ? null : typeof v === 'string' ? v : toPgText(typeName, v);
    }
    return arrayLiteral(texts);
  });
}
