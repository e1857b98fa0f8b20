import type { AstFields, AstNode } from './ast.ts';
import { fieldsOf, functionName, stringValue, transform, walk } from './ast.ts';

/**
 * `pipelinedb.hash_group(a, b, …)`, PipelineDB's hash of a group's values
 * (an int4): any number of arguments of any types, which no SQL or PL/pgSQL
 * function can declare, so a call is rewritten to PostgreSQL's
 * `hash_record(ROW(a, b, …))`. The hash values are PostgreSQL's, not
 * PipelineDB's (which no one can rely on across versions either). Null when
 * the statement calls no hash_group.
 */
export function rewriteHashGroup(select: AstFields): AstFields | null {
  let uses = false;
  walk(select, (node, kind) => {
    if (kind === 'FuncCall' && isHashGroup(node.FuncCall as AstFields)) uses = true;
  });
  if (!uses) return null;
  // The column keeps the name PostgreSQL would give the call.
  walk(select, (node, kind) => {
    const target = kind === 'ResTarget' ? (node.ResTarget as AstFields) : undefined;
    const call = target && !target.name ? fieldsOf(target.val, 'FuncCall') : undefined;
    if (target && call && isHashGroup(call)) target.name = 'hash_group';
  });
  return transform(select, (node, kind) => {
    if (kind !== 'FuncCall' || !isHashGroup(node.FuncCall as AstFields)) return undefined;
    const call = node.FuncCall as AstFields;
    const args = ((call.args as AstNode[] | undefined) ?? []).map((arg) => rewriteHashGroup({ arg })?.arg ?? arg);
    return {
      FuncCall: {
        funcname: [{ String: { sval: 'pg_catalog' } }, { String: { sval: 'hash_record' } }],
        args: [{ RowExpr: { args, row_format: 'COERCE_EXPLICIT_CALL' } }],
        funcformat: 'COERCE_EXPLICIT_CALL',
      },
    };
  }) as AstFields;
}

function isHashGroup(call: AstFields): boolean {
  const parts = (call.funcname as AstNode[]).map(stringValue);
  return functionName(call) === 'hash_group' && (parts.length === 1 || parts[0] === 'pipelinedb') && !call.over;
}
