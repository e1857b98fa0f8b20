import type { ContinuousView } from '../engine/continuous-view.ts';
import { SqlError, SqlState } from '../engine/errors.ts';
import { qualifiedName } from '../engine/sql-text.ts';
import type { AstFields, AstNode } from './ast.ts';
import { deparse, fieldsOf, stringValue, transform } from './ast.ts';
import type { StatementContext, StatementResult } from './context.ts';
import { parseQuery } from './parser.ts';

/**
 * `CREATE INDEX ON v (col)` over a continuous view (BI users index what they
 * filter on): the index goes on the view's `_mrel`, over the expression that
 * gives `col` (the column itself for a grouping key), as PostgreSQL's view
 * definition says. A partial index's WHERE is translated the same way.
 * `DROP INDEX` then works as for any index.
 */
export async function createIndexOnView(ctx: StatementContext, view: ContinuousView, stmt: AstFields): Promise<StatementResult> {
  const columns = await viewColumnExpressions(ctx, view);
  const overMrel = (node: unknown) =>
    transform(node, (n, kind) => {
      if (kind !== 'ColumnRef') return undefined;
      const fields = (fieldsOf(n, 'ColumnRef')?.fields as AstNode[] | undefined) ?? [];
      const name = fields.length === 1 ? stringValue(fields[0]) : undefined;
      const expr = name === undefined ? undefined : columns.get(name);
      if (!expr) throw new SqlError(SqlState.undefinedColumn, `column "${fields.map(stringValue).join('.')}" does not exist in continuous view ${view.name}`);
      return expr;
    });
  const params = ((stmt.indexParams as AstNode[] | undefined) ?? []).map((param) => {
    const elem = fieldsOf(param, 'IndexElem') as AstFields;
    const expr = elem.name !== undefined ? columns.get(elem.name as string) : overMrel(elem.expr);
    if (!expr) throw new SqlError(SqlState.undefinedColumn, `column "${elem.name}" does not exist in continuous view ${view.name}`);
    const { name: _name, ...rest } = elem;
    // PostgreSQL indexes an expression that is a column of the table (a key cast to its own type) as that column.
    return { IndexElem: { ...rest, expr } };
  });
  const index = {
    IndexStmt: {
      ...stmt,
      relation: { ...(stmt.relation as AstFields), schemaname: view.plan.schema, relname: view.plan.mrel },
      indexParams: params,
      ...(stmt.whereClause ? { whereClause: overMrel(stmt.whereClause) } : {}),
    },
  };
  await ctx.conn.exec(deparse(index));
  return { tag: 'CREATE INDEX' };
}

/** Each view column's expression over the `_mrel`, from PostgreSQL's own definition of the view. */
async function viewColumnExpressions(ctx: StatementContext, view: ContinuousView): Promise<Map<string, unknown>> {
  const definition = (await ctx.conn.query('SELECT pg_get_viewdef($1::regclass)', [qualifiedName(view.plan.schema, view.name)])).rows[0][0] as string;
  const select = fieldsOf(parseQuery(definition).statements[0].node, 'SelectStmt') as AstFields;
  const columns = new Map<string, unknown>();
  for (const target of (select.targetList as AstNode[]) ?? []) {
    const res = fieldsOf(target, 'ResTarget') as AstFields;
    const expr: unknown = res.val;
    const name = (res.name as string | undefined) ?? lastField(expr);
    if (name !== undefined) columns.set(name, expr);
  }
  return columns;
}

function lastField(expr: unknown): string | undefined {
  const fields = (fieldsOf(expr, 'ColumnRef')?.fields as AstNode[] | undefined) ?? [];
  return fields.length ? stringValue(fields[fields.length - 1]) : undefined;
}
