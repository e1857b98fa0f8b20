import type { AstFields, AstNode } from './ast.ts';
import { functionName, rewriteCalls, stringValue } from './ast.ts';

/**
 * `pipelinedb.hash_group(a, b, …)`, PipelineDB's hash of a group's values
 * (an int4): any number of arguments of any types, which no SQL or PL/pgSQL
 * function can declare, so a call is rewritten to PostgreSQL's
 * `hash_record(ROW(a, b, …))`. The hash values are PostgreSQL's, not
 * PipelineDB's (which no one can rely on across versions either). Null when
 * the statement calls no hash_group.
 */
export function rewriteHashGroup<T>(statement: T): T | null {
  return rewriteCalls(statement, isHashGroup, (call) => ({
    FuncCall: {
      funcname: [{ String: { sval: 'pg_catalog' } }, { String: { sval: 'hash_record' } }],
      args: [{ RowExpr: { args: (call.args as AstNode[] | undefined) ?? [], row_format: 'COERCE_EXPLICIT_CALL' } }],
      funcformat: 'COERCE_EXPLICIT_CALL',
    },
  }));
}

function isHashGroup(call: AstFields): boolean {
  const parts = (call.funcname as AstNode[]).map(stringValue);
  return functionName(call) === 'hash_group' && (parts.length === 1 || parts[0] === 'pipelinedb') && !call.over;
}
