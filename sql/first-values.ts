import { createHash } from 'node:crypto';
import { qualifiedName, quoteIdent } from '../engine/sql-text.ts';
import { rolledBack, type StoreConnection } from '../engine/store.ts';
import type { AstFields, AstNode } from './ast.ts';
import { deparse, functionName, rewriteCalls, walk } from './ast.ts';

/**
 * PipelineDB's `first_values(n, v1, v2, …)`: the n smallest tuples (v1, v2,
 * …), sorted as PostgreSQL sorts rows (field by field, NULLs last).
 *
 * - In a query over tables, the call becomes `(array_agg(ROW(v1, v2, …)
 *   ORDER BY ROW(v1, v2, …)))[1:n]` (tuples of NULLs only skipped): an array of anonymous records, which
 *   no SQL or PL/pgSQL function can take or return (only PostgreSQL's own).
 * - In a continuous view, the tuples must be stored in its `_mrel`, which
 *   anonymous records cannot be: the view gets a composite type of the
 *   values' types (`<view>_first_values_<k>`, dropped with the view) and the
 *   call becomes `first_values(n, ROW(v1, v2, …)::that_type)`.
 */
function isTupleCall(call: AstFields): boolean {
  return functionName(call) === 'first_values' && ((call.args as AstNode[] | undefined)?.length ?? 0) > 2 && !call.over;
}

function rowOf(values: AstNode[]): AstNode {
  return { RowExpr: { args: values, row_format: 'COERCE_EXPLICIT_CALL' } };
}

/** A query over tables: each first_values(n, v1, v2, …) reads rows; null when there is none. */
export function rewriteFirstValuesRows<T>(statement: T): T | null {
  return rewriteCalls(statement, isTupleCall, (call) => {
    const [n, ...values] = call.args as AstNode[];
    const row = () => rowOf(values);
    // A tuple of NULLs only is skipped, as first_values(n, v) skips a NULL v.
    const notAllNull: AstNode = { BoolExpr: { boolop: 'NOT_EXPR', args: [{ NullTest: { arg: row(), nulltesttype: 'IS_NULL' } }] } };
    const filter = call.agg_filter ? { BoolExpr: { boolop: 'AND_EXPR', args: [call.agg_filter, notAllNull] } } : notAllNull;
    const aggregate = {
      FuncCall: {
        funcname: [{ String: { sval: 'array_agg' } }],
        args: [row()],
        agg_order: [{ SortBy: { node: row(), sortby_dir: 'SORTBY_DEFAULT', sortby_nulls: 'SORTBY_NULLS_DEFAULT' } }],
        agg_filter: filter,
        funcformat: 'COERCE_EXPLICIT_CALL',
      },
    };
    return { A_Indirection: { arg: aggregate, indirection: [{ A_Indices: { is_slice: true, lidx: { A_Const: { ival: { ival: 1 } } }, uidx: n } }] } };
  });
}

/**
 * A continuous view: creates (in the caller's transaction) a composite type
 * per first_values(n, v1, v2, …) and rewrites the call, in place, to
 * first_values(n, ROW(v1, v2, …)::type). Returns the types, for DROP VIEW.
 */
export async function typeFirstValuesTuples(conn: StoreConnection, view: { schema: string; name: string }, exprs: unknown, from: string): Promise<string[]> {
  const calls: AstFields[] = [];
  walk(exprs, (node, kind) => {
    if (kind === 'FuncCall' && isTupleCall(node.FuncCall as AstFields)) calls.push(node.FuncCall as AstFields);
  });
  const types: string[] = [];
  for (const call of calls) {
    const [n, ...values] = call.args as AstNode[];
    const fieldTypes = await valueTypes(conn, values, from);
    const name = tupleTypeName(view.name, types.length + 1);
    const type = qualifiedName(view.schema, name);
    await conn.exec(`CREATE TYPE ${type} AS (${fieldTypes.map((t, i) => `${quoteIdent(`v${i + 1}`)} ${t}`).join(', ')})`);
    types.push(type);
    call.args = [n, { TypeCast: { arg: rowOf(values), typeName: typeNameOf(view.schema, name) } }];
  }
  return types;
}

/** `<view>_first_values_<k>`; for a long view name (PostgreSQL cuts names at 63 bytes) a shortened one with a hash of it. */
function tupleTypeName(view: string, k: number): string {
  const name = `${view}_first_values_${k}`;
  if (Buffer.byteLength(name) <= 63) return name;
  const hash = createHash('sha1').update(view).digest('hex').slice(0, 8);
  return `${Buffer.from(view).subarray(0, 30).toString('utf8').replace(/\uFFFD+$/, '')}_${hash}_first_values_${k}`;
}

function typeNameOf(schema: string, name: string): AstNode {
  return { names: [{ String: { sval: schema } }, { String: { sval: name } }], typemod: -1 };
}

async function valueTypes(conn: StoreConnection, values: AstNode[], from: string): Promise<string[]> {
  const columns = values.map((v, i) => `${deparse(v)} AS v${i + 1}`).join(', ');
  return rolledBack(conn, async () => {
    await conn.exec(`CREATE TEMP VIEW sluice_probe_tuple AS SELECT ${columns} FROM ${from}`);
    const result = await conn.query(
      "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = 'pg_temp.sluice_probe_tuple'::regclass AND a.attnum > 0 ORDER BY a.attnum",
    );
    return result.rows.map(([t]) => t as string);
  });
}
