import { arrivalOrderColumn } from './aggregates.ts';
import { quoteIdent } from './sql-text.ts';
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
  const positions = plan.columns.map((c) => stream.position(c) ?? -1);
  const arrays = plan.columns.map((_, i) => `$${i + 1}::${stream.columns[positions[i]].type}[]`);
  const names = [...plan.columns.map(quoteIdent), arrivalOrderColumn].join(', ');
  const rows = plan.columns.length
    ? (as: string) => `unnest(${arrays.join(', ')}) WITH ORDINALITY AS ${as}(${names})`
    : (as: string) => `generate_series(1, $1::int) AS ${as}(${arrivalOrderColumn})`;
  if (!plan.from) return { withClause: '', from: rows(alias) };
  return { withClause: `WITH ${quoteIdent(plan.stream.name)} AS (SELECT * FROM ${rows('batch')}) `, from: plan.from };
}
