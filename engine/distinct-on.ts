import { arrivalOrderColumn } from './aggregates.ts';
import { quoteIdent } from './sql-text.ts';
import type { DistinctOnPlan, ViewPlan } from './view-plan.ts';

/**
 * `SELECT DISTINCT ON (k…) … ORDER BY k…, x…` as a continuous view: the
 * `_mrel` keeps, per key, the row PostgreSQL's DISTINCT ON returns over all
 * rows so far — the first in ORDER BY. Each batch yields its own first row per
 * key (ties: the earliest arrival), which replaces the stored one only when it
 * comes strictly before it, so on ties the earliest arrival stays.
 */

/** The `_mrel` columns of a DISTINCT ON view after its keys: sort keys, then the row's values. */
export function distinctOnColumns(plan: DistinctOnPlan): string[] {
  return [...plan.order.map((o) => o.column), ...plan.values.map((v) => v.column)];
}

/** The batch's first row per key, as the SELECT of an upsert (keys, sort keys, values). */
export function distinctOnSelectSql(plan: ViewPlan, distinctOn: DistinctOnPlan, from: string, where: string): string {
  const keys = plan.groups.map((g) => g.sql);
  const outputs = [...keys, ...distinctOn.order.map((o) => o.sql), ...distinctOn.values.map((v) => v.sql)];
  const keyPositions = keys.map((_, i) => String(i + 1));
  const order = distinctOn.order.map((o, i) => `${keys.length + i + 1} ${o.descending ? 'DESC' : 'ASC'} NULLS ${o.nullsFirst ? 'FIRST' : 'LAST'}`);
  return (
    `SELECT DISTINCT ON (${keyPositions.join(', ')}) ${outputs.join(', ')} FROM ${from}${where}` +
    ` ORDER BY ${[...keyPositions, ...order, arrivalOrderColumn].join(', ')}`
  );
}

/** ON CONFLICT of the upsert: a stored row is replaced only by one that comes strictly before it. */
export function distinctOnConflictSql(plan: ViewPlan, distinctOn: DistinctOnPlan, stored: string): string {
  const keys = plan.groups.map((g) => quoteIdent(g.column));
  if (distinctOn.order.length === 0) return `ON CONFLICT (${keys.join(', ')}) DO NOTHING`;
  const updates = distinctOnColumns(distinctOn).map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`);
  return `ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${updates.join(', ')} WHERE ${precedesSql(distinctOn, 'EXCLUDED', stored)}`;
}

/** Whether row `a` sorts strictly before row `b` in the ORDER BY terms (lexicographically, NULLs where the terms put them). */
function precedesSql(distinctOn: DistinctOnPlan, a: string, b: string): string {
  let sql = '';
  for (let i = distinctOn.order.length - 1; i >= 0; i--) {
    const term = distinctOn.order[i];
    const x = `${a}.${quoteIdent(term.column)}`;
    const y = `${b}.${quoteIdent(term.column)}`;
    const nulls = term.nullsFirst ? `(${x} IS NULL AND ${y} IS NOT NULL)` : `(${x} IS NOT NULL AND ${y} IS NULL)`;
    const before = `(${nulls} OR coalesce(${x} ${term.descending ? '>' : '<'} ${y}, false))`;
    sql = sql ? `(${before} OR (${x} IS NOT DISTINCT FROM ${y} AND ${sql}))` : before;
  }
  return sql;
}
