import { groupingSetNumberSql } from '../engine/batch-source.ts';
import { SqlError, SqlState } from '../engine/errors.ts';
import type { GroupPlan, ViewPlan } from '../engine/view-plan.ts';
import { fieldsOf, nodeKind, sameExpression, type AstFields, type AstNode } from './ast.ts';

/**
 * GROUP BY with GROUPING SETS, CUBE and ROLLUP, expanded as PostgreSQL
 * expands them: each item of the GROUP BY list is a list of grouping sets (a
 * plain expression is the one set of itself), and the list's sets are the
 * cross product of its items' (the concatenation of one set of each). Sets are
 * kept with their multiplicity — `GROUP BY a, ROLLUP (a)` groups by a twice,
 * and PostgreSQL returns each group twice — unless GROUP BY DISTINCT.
 */

export interface GroupBy {
  /** The distinct grouping expressions, in order of appearance. */
  exprs: AstNode[];
  /** Each grouping set as indexes into `exprs` (ascending); undefined for a plain GROUP BY (one set of all the expressions). */
  sets?: number[][];
}

/** PostgreSQL's limits: CUBE of at most 12 elements, at most 4096 grouping sets. */
const maxCubeElements = 12;
const maxGroupingSets = 4096;

/**
 * The grouping expressions and sets of a SELECT's GROUP BY. `resolve` turns
 * a GROUP BY item into its expression (ordinals, output column names).
 */
export function expandGroupBy(select: AstFields, resolve: (item: AstNode) => AstNode): GroupBy {
  const items = (select.groupClause as AstNode[] | undefined) ?? [];
  const exprs: AstNode[] = [];
  const indexOf = (item: AstNode): number => {
    const expr = resolve(item);
    const index = exprs.findIndex((e) => sameExpression(e, expr));
    if (index >= 0) return index;
    exprs.push(expr);
    return exprs.length - 1;
  };
  /** An element of ROLLUP/CUBE or of GROUPING SETS: `(a, b)` is the list a, b; anything else one expression. */
  const element = (node: AstNode): number[] => {
    const row = fieldsOf(node, 'RowExpr');
    if (row && row.row_format === 'COERCE_IMPLICIT_CAST') return ((row.args as AstNode[] | undefined) ?? []).map(indexOf);
    return [indexOf(node)];
  };
  const setsOf = (node: AstNode, nested: boolean): number[][] => {
    const set = fieldsOf(node, 'GroupingSet');
    if (!set) return nested ? [element(node)] : [[indexOf(node)]];
    const content = (set.content as AstNode[] | undefined) ?? [];
    switch (set.kind) {
      case 'GROUPING_SET_EMPTY':
        return [[]];
      case 'GROUPING_SET_SETS':
        return limited(content.flatMap((c) => setsOf(c, true)));
      case 'GROUPING_SET_ROLLUP': {
        const elements = content.map(element);
        return elements.map((_, i) => elements.slice(0, elements.length - i).flat()).concat([[]]);
      }
      case 'GROUPING_SET_CUBE': {
        if (content.length > maxCubeElements) throw new SqlError('54011', `CUBE is limited to ${maxCubeElements} elements`);
        const elements = content.map(element);
        const sets: number[][] = [];
        for (let mask = (1 << elements.length) - 1; mask >= 0; mask--) sets.push(elements.filter((_, i) => mask & (1 << (elements.length - 1 - i))).flat());
        return sets;
      }
      default:
        throw new SqlError(SqlState.featureNotSupported, `GROUP BY item ${String(set.kind)} is not supported in a continuous view`);
    }
  };
  let sets: number[][] = [[]];
  for (const item of items) {
    const itemSets = setsOf(item, false);
    sets = limited(sets.flatMap((s) => itemSets.map((t) => [...s, ...t])));
  }
  if (!items.some((item) => nodeKind(item) === 'GroupingSet')) return { exprs };
  let normalized = sets.map((s) => [...new Set(s)].sort((a, b) => a - b));
  if (select.groupDistinct === true) {
    const seen = new Set<string>();
    normalized = normalized.filter((s) => !seen.has(s.join(',')) && seen.add(s.join(',')) !== undefined);
  }
  // A single set is a plain GROUP BY (`GROUP BY ()`, `GROUPING SETS ((a, b))`).
  return normalized.length === 1 ? { exprs } : { exprs, sets: normalized };
}

function limited(sets: number[][]): number[][] {
  if (sets.length > maxGroupingSets) throw new SqlError('54001', `too many grouping sets present (maximum ${maxGroupingSets})`);
  return sets;
}

/**
 * `GROUPING(a, b, …)` as SQL over the `_mrel`: a bit per argument, the
 * leftmost the most significant, set when the argument is not grouped in the
 * row's grouping set (read from the set-number column `setColumn`).
 */
export function groupingFunctionSql(call: AstFields, groupBy: GroupBy, setColumn: string | undefined): string {
  const args = ((call.args as AstNode[] | undefined) ?? []).map((arg) => groupBy.exprs.findIndex((e) => sameExpression(e, arg)));
  if (args.some((i) => i < 0)) throw new SqlError(SqlState.groupingError, 'arguments to GROUPING must be grouping expressions of the associated query level');
  if (!groupBy.sets || setColumn === undefined) return '0';
  const values = groupBy.sets.map((set) => args.reduce((bits, i) => bits * 2 + (set.includes(i) ? 0 : 1), 0));
  if (values.every((v) => v === values[0])) return String(values[0]);
  return `CASE ${setColumn} ${values.map((v, s) => `WHEN ${s} THEN ${v}`).join(' ')} END`;
}

/**
 * Turns a view's grouping keys into grouping-set keys: a key is NULL in the
 * rows of the sets that lack it, and a last key, `column`, holds the set's
 * number (so the `_mrel` keeps a row per set and key values).
 */
export function addGroupingSetKey(groups: GroupPlan[], sets: number[][], column: string): NonNullable<ViewPlan['groupingSets']> {
  groups.forEach((group, g) => {
    const present = sets.flatMap((set, s) => (set.includes(g) ? [s] : []));
    if (present.length === sets.length) return;
    group.sql = `CASE WHEN ${groupingSetNumberSql} IN (${present.join(', ')}) THEN (${group.sql}) END`;
    group.sourceColumn = undefined;
  });
  groups.push({ column, sql: groupingSetNumberSql, type: 'integer', typeName: 'int4' });
  return { column, sets };
}
