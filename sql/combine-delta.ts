import { aggregateImpl } from '../engine/aggregates.ts';
import { SqlError, SqlState } from '../engine/errors.ts';
import { reaggregateSql } from '../engine/reaggregate.ts';
import { quoteIdent } from '../engine/sql-text.ts';
import type { AggregatePlan, ViewPlan } from '../engine/view-plan.ts';
import type { AstFields, AstNode } from './ast.ts';
import { columnRefParts, fieldsOf, functionName, stringValue, transform } from './ast.ts';
import { parseExpression } from './parser.ts';

/**
 * `combine((delta).col)` in a continuous view over `output_of('v')`: each
 * change of v carries, in `delta`, the partial state its batch added to the
 * group (an `_mrel` row of v), so a view over the output stream rolls v up
 * exactly (per hour from per minute, say) by merging those states as v
 * merges them, and finishing them as v does.
 */
function isCombine(call: AstFields): boolean {
  return functionName(call) === 'combine';
}

/** The aggregate of the upstream view that `combine((delta).col)` merges. */
export function deltaAggregate(call: AstFields, upstream: ViewPlan | undefined): AggregatePlan {
  const args = (call.args as AstNode[] | undefined) ?? [];
  const column = args.length === 1 && !call.agg_filter && !call.agg_distinct ? deltaColumn(args[0]) : undefined;
  if (!upstream || column === undefined) {
    throw new SqlError(SqlState.featureNotSupported, 'combine() in a continuous view takes a column of delta from output_of a view: combine((delta).col)', {
      hint: "SELECT combine((delta).total) FROM output_of('v'); to combine a view's columns when reading it, use combine() in a query over the view.",
    });
  }
  const aggregate = upstream.aggregates.find((a) => a.column === column);
  if (!aggregate) {
    throw new SqlError(SqlState.undefinedColumn, `combine((delta).${column}): "${upstream.name}" has no aggregate column of that name`);
  }
  if (aggregate.sketch) {
    throw new SqlError(SqlState.featureNotSupported, `combine((delta).${column}) of ${aggregate.fn} is not supported`);
  }
  return aggregate;
}

/** `(delta).col` → col; undefined for anything else. */
function deltaColumn(node: AstNode): string | undefined {
  const indirection = fieldsOf(node, 'A_Indirection');
  if (!indirection) return undefined;
  const parts = columnRefParts(indirection.arg);
  const fields = (indirection.indirection as AstNode[] | undefined) ?? [];
  if (parts?.at(-1) !== 'delta' || fields.length !== 1) return undefined;
  return stringValue(fields[0]);
}

/** SQL merging the states `state` of `aggregate` over rows (in `order` for order-sensitive ones). */
function mergeStatesSql(aggregate: AggregatePlan, state: string, order: string): string {
  const sql = reaggregateSql(aggregate, aggregateImpl(aggregate).stateType, state, order);
  if (!sql) throw new SqlError(SqlState.featureNotSupported, `combine((delta).${aggregate.column}) of ${aggregate.fn} is not supported`);
  return sql;
}

/** A copy of `exprs` where each combine((delta).col) is the value it finishes to, so PostgreSQL can type the view. */
export function typedCombines<T>(exprs: T, upstream: ViewPlan | undefined): T {
  return transform(exprs, (node, kind) => {
    if (kind !== 'FuncCall' || !isCombine(node.FuncCall as AstFields)) return undefined;
    const call = node.FuncCall as AstFields;
    const aggregate = deltaAggregate(call, upstream);
    const state = `((delta).${quoteIdent(aggregate.column)})`;
    return parseExpression(`(${aggregateImpl(aggregate).finalSql(mergeStatesSql(aggregate, state, 'arrival_timestamp'))})`);
  }) as T;
}
