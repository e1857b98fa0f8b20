import { aggregateImpl } from '../engine/aggregates.ts';
import { reaggregateSql } from '../engine/reaggregate.ts';
import { quoteIdent } from '../engine/sql-text.ts';
import type { ContinuousView } from '../engine/continuous-view.ts';
import type { AstFields, AstNode } from './ast.ts';
import { columnRefParts, deparse, fieldsOf, functionName, transform, walk } from './ast.ts';
import { SqlError, SqlState } from '../engine/errors.ts';
import type { RoutingContext } from './router.ts';

/**
 * PipelineDB's `combine(column)`: re-aggregates a continuous view's aggregate
 * across the rows read, from their transition states (so combining averages
 * or distinct counts of several groups is exact, unlike averaging the
 * averages). Each SELECT using combine() over `v` or `v_mrel`, at any depth
 * of any statement (a CTE, a sub-select, one side of a UNION, an ordinary
 * view's query), is rewritten to read `v_mrel` and merge the states with
 * SQL; null when the statement has no combine().
 */
export function rewriteCombine(ctx: RoutingContext, statement: AstNode): string | null {
  let uses = false;
  walk(statement, (node, kind) => {
    if (kind === 'FuncCall' && isCombine(node.FuncCall as AstFields)) uses = true;
  });
  if (!uses) return null;
  const placeholders: string[] = [];
  const rewriteLevels = (node: unknown): unknown =>
    transform(node, (child, kind) => {
      if (kind !== 'SelectStmt') return undefined;
      const fields = child.SelectStmt as AstFields;
      const inner: AstFields = {};
      for (const [key, value] of Object.entries(fields)) {
        // The sides of a UNION are SelectStmt fields without their node wrapper.
        const side = (key === 'larg' || key === 'rarg') && value ? (rewriteLevels({ SelectStmt: value }) as AstNode).SelectStmt : undefined;
        inner[key] = side ?? rewriteLevels(value);
      }
      return { SelectStmt: usesCombineAtLevel(inner) ? rewriteLevel(ctx, inner, placeholders) : inner };
    });
  const rewritten = rewriteLevels(statement);
  return deparse(rewritten).replace(/\bsluice_combine_(\d+)\b/g, (_, i: string) => placeholders[Number(i)]);
}

function isCombine(call: AstFields): boolean {
  return functionName(call) === 'combine';
}

/** Whether this SELECT's own targets (not a sub-select's) call combine(). */
function usesCombineAtLevel(select: AstFields): boolean {
  let uses = false;
  walk(select.targetList, (node, kind) => {
    if (kind === 'SelectStmt') return false;
    if (kind === 'FuncCall' && isCombine(node.FuncCall as AstFields)) uses = true;
  });
  return uses;
}

/** One SELECT over a view: reads its _mrel, each combine(col) a placeholder for the merged state's final value. */
function rewriteLevel(ctx: RoutingContext, select: AstFields, placeholders: string[]): AstFields {
  const from = (select.fromClause as AstNode[] | undefined) ?? [];
  const range = from.length === 1 ? fieldsOf(from[0], 'RangeVar') : undefined;
  const view = range && viewOf(ctx, range);
  if (!range || !view) throw new SqlError(SqlState.featureNotSupported, 'combine() reads one continuous view (or its _mrel) in FROM');
  if (view.plan.groupingSets) {
    // Its rows hold the subtotals of every grouping set: combining them would count each row once per set.
    throw new SqlError(SqlState.featureNotSupported, `combine() over "${view.name}", a view with GROUPING SETS, CUBE or ROLLUP, is not supported`, {
      hint: 'Read the subtotal row you need from the view, or combine() over a view with a plain GROUP BY.',
    });
  }
  const impls = view.plan.aggregates.map(aggregateImpl);
  // An unnamed combine(x) column is called "combine", as in PipelineDB.
  for (const target of (select.targetList as AstNode[] | undefined) ?? []) {
    const fields = fieldsOf(target, 'ResTarget') as AstFields;
    const call = fieldsOf(fields.val, 'FuncCall');
    if (call && isCombine(call) && !fields.name) fields.name = 'combine';
  }
  const windowed = windowCondition(view, range, placeholders);
  if (windowed) select = { ...select, whereClause: select.whereClause ? { BoolExpr: { boolop: 'AND_EXPR', args: [select.whereClause, windowed] } } : windowed };
  return transform(select, (node, kind) => {
    if (kind === 'SelectStmt') return node;
    if (kind === 'RangeVar' && node.RangeVar === range) {
      return { RangeVar: { ...range, schemaname: view.plan.schema, relname: view.plan.mrel, alias: range.alias ?? { aliasname: range.relname } } };
    }
    if (kind !== 'FuncCall' || !isCombine(node.FuncCall as AstFields)) return undefined;
    const args = ((node.FuncCall as AstFields).args as AstNode[] | undefined) ?? [];
    const column = args.length === 1 ? columnRefParts(args[0])?.at(-1) : undefined;
    const index = view.plan.aggregates.findIndex((a) => a.column === column);
    if (index < 0) throw new SqlError(SqlState.undefinedColumn, `combine(${column ?? '…'}): "${view.name}" has no aggregate column of that name`);
    const aggregate = view.plan.aggregates[index];
    const state = reaggregateSql(aggregate, impls[index].stateType, quoteIdent(aggregate.column), quoteIdent(aggregate.column));
    if (!state) throw new SqlError(SqlState.featureNotSupported, `combine(${column}) is not supported for ${aggregate.fn}`);
    placeholders.push(`(${impls[index].finalSql(state)})`);
    return { ColumnRef: { fields: [{ String: { sval: `sluice_combine_${placeholders.length - 1}` } }] } };
  }) as AstFields;
}

/**
 * A sliding-window view read by name holds only the buckets still in its
 * window, as reading it does (its _mrel keeps expired ones until the reaper
 * drops them); null for other views and for a read of the _mrel itself.
 */
function windowCondition(view: ContinuousView, range: AstFields, placeholders: string[]): AstNode | null {
  const window = view.plan.window;
  const bucket = view.plan.ttl?.column;
  if (!window || !bucket || range.relname !== view.plan.name) return null;
  placeholders.push(`(${quoteIdent(bucket)} + '${window.step}'::interval > sluice.now() - '${window.interval}'::interval)`);
  return { ColumnRef: { fields: [{ String: { sval: `sluice_combine_${placeholders.length - 1}` } }] } };
}

function viewOf(ctx: RoutingContext, range: AstFields): ContinuousView | undefined {
  const name = range.relname as string;
  const schema = (range.schemaname as string | undefined) ?? 'public';
  const direct = ctx.engine.view(schema, name);
  if (direct) return direct;
  return ctx.engine.allViews().find((v) => v.plan.schema === schema && v.plan.mrel === name);
}

