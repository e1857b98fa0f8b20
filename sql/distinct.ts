import { SqlError, SqlState } from '../engine/errors.ts';
import { quoteIdent } from '../engine/sql-text.ts';
import type { DistinctOnPlan, TypeRef } from '../engine/view-plan.ts';
import { columnRefParts, deparse, fieldsOf, functionName, nodeKind, sameExpression, stringValue, walk, type AstFields, type AstNode } from './ast.ts';

/**
 * SELECT DISTINCT in a continuous view. Plain DISTINCT is grouping by the
 * selected expressions without aggregates. DISTINCT ON (k…) keeps, per key,
 * the row that comes first in ORDER BY: the keys, and the ORDER BY terms after
 * them that decide which row that is.
 */

function notSupported(what: string, hint?: string): SqlError {
  return new SqlError(SqlState.featureNotSupported, `${what} is not supported in a continuous view`, { hint });
}

/** `'all'` for SELECT DISTINCT, `'on'` for SELECT DISTINCT ON (…), undefined without DISTINCT. */
export function distinctKind(select: AstFields): 'all' | 'on' | undefined {
  const clause = select.distinctClause as AstNode[] | undefined;
  if (!clause) return undefined;
  return clause.length === 1 && Object.keys(clause[0] ?? {}).length === 0 ? 'all' : 'on';
}

export interface DistinctOnTerms {
  keys: AstNode[];
  order: { expr: AstNode; descending: boolean; nullsFirst: boolean; collation?: string }[];
}

/** Rejects what a DISTINCT view cannot keep (checked before PostgreSQL types the query). */
export function checkDistinct(select: AstFields, kind: 'all' | 'on', aggregates: number, window: boolean): void {
  const what = kind === 'on' ? 'SELECT DISTINCT ON' : 'SELECT DISTINCT';
  if (aggregates > 0 || select.groupClause || select.havingClause) {
    throw notSupported(`${what} with aggregates, GROUP BY or HAVING`, 'Drop DISTINCT and read the view with it: SELECT DISTINCT … FROM v.');
  }
  if (kind === 'on' && window) throw notSupported(`${what} in a sliding-window view`, 'Group by the key and time bucket with aggregates (min, max) instead.');
  walk(select.fromClause, (_, nodeKindName) => {
    if (kind === 'on' && nodeKindName === 'RangeSubselect') throw notSupported(`${what} over a sub-select in FROM`, 'Read the stream directly, or through a continuous transform.');
  });
}

/**
 * The DISTINCT ON keys and the ORDER BY terms after them, positions and
 * output-column names resolved as PostgreSQL resolves them in ORDER BY.
 */
export function distinctOnTerms(select: AstFields, targets: AstFields[]): DistinctOnTerms {
  const keys: AstNode[] = [];
  for (const item of select.distinctClause as AstNode[]) {
    const expr = resolveSortItem(item, targets, 'SELECT DISTINCT ON');
    if (!keys.some((k) => sameExpression(k, expr))) keys.push(expr);
  }
  const order: DistinctOnTerms['order'] = [];
  for (const node of (select.sortClause as AstNode[] | undefined) ?? []) {
    const sort = fieldsOf(node, 'SortBy') as AstFields;
    const expr = resolveSortItem(sort.node as AstNode, targets, 'ORDER BY');
    if (keys.some((k) => sameExpression(k, expr)) || order.some((o) => sameExpression(o.expr, expr))) continue;
    let descending = sort.sortby_dir === 'SORTBY_DESC';
    if (sort.sortby_dir === 'SORTBY_USING') {
      const op = ((sort.useOp as unknown[]) ?? []).map(stringValue).join('.');
      if (op !== '<' && op !== '>') throw notSupported(`ORDER BY … USING ${op}`, 'Use ASC or DESC.');
      descending = op === '>';
    }
    const nullsFirst = sort.sortby_nulls === 'SORTBY_NULLS_FIRST' || (sort.sortby_nulls !== 'SORTBY_NULLS_LAST' && descending);
    const collate = fieldsOf(expr, 'CollateClause');
    const collation = collate ? ((collate.collname as unknown[]).map(stringValue) as string[]).map(quoteIdent).join('.') : undefined;
    order.push({ expr, descending, nullsFirst, ...(collation ? { collation } : {}) });
  }
  return { keys, order };
}

/**
 * An ORDER BY or DISTINCT ON item as an expression: a position is a select
 * list entry, and a bare name that is an output column's name is that column
 * (before an input column of the same name, as in PostgreSQL).
 */
function resolveSortItem(item: AstNode, targets: AstFields[], clause: string): AstNode {
  const constant = fieldsOf(item, 'A_Const');
  if (constant && constant.ival !== undefined) {
    const position = ((constant.ival as { ival?: number }).ival ?? 0) - 1;
    if (position < 0 || position >= targets.length) throw new SqlError(SqlState.invalidColumnReference, `${clause} position ${position + 1} is not in select list`);
    return targets[position].val as AstNode;
  }
  const parts = columnRefParts(item);
  if (parts?.length === 1) {
    const named = targets.filter((t) => outputName(t) === parts[0]);
    if (named.length > 0 && named.every((t) => sameExpression(t.val, named[0].val))) return named[0].val as AstNode;
  }
  return item;
}

/** The name PostgreSQL gives a select-list entry, for the cases ORDER BY can refer to. */
function outputName(target: AstFields): string | undefined {
  if (target.name) return target.name as string;
  let val = target.val as AstNode;
  while (nodeKind(val) === 'TypeCast') val = (val.TypeCast as AstFields).arg as AstNode;
  const parts = columnRefParts(val);
  if (parts) return parts.at(-1);
  const call = fieldsOf(val, 'FuncCall');
  return call ? functionName(call) : undefined;
}

/**
 * The `_mrel` columns of a DISTINCT ON view besides its keys: the ORDER BY
 * terms (typed `orderTypes`), and each selected expression that is not a key
 * (`values`, to read the view's columns from).
 */
export function distinctOnPlan(
  terms: DistinctOnTerms,
  entries: { val: AstNode; name: string; type: TypeRef }[],
  orderTypes: TypeRef[],
  unique: (name: string) => string,
): { plan: DistinctOnPlan; values: { expr: AstNode; column: string }[] } {
  const values: { expr: AstNode; column: string }[] = [];
  const plan: DistinctOnPlan = { values: [], order: [] };
  for (const entry of entries) {
    if (terms.keys.some((k) => sameExpression(k, entry.val)) || values.some((v) => sameExpression(v.expr, entry.val))) continue;
    const column = unique(entry.name);
    values.push({ expr: entry.val, column });
    plan.values.push({ column, sql: deparse(entry.val), type: entry.type.type });
  }
  plan.order = terms.order.map((term, i) => ({
    column: unique(`_order${i + 1}`),
    sql: deparse(term.expr),
    type: `${orderTypes[i].type}${term.collation ? ` COLLATE ${term.collation}` : ''}`,
    descending: term.descending,
    nullsFirst: term.nullsFirst,
  }));
  return { plan, values };
}
