import { deparseSync } from 'pgsql-deparser';

/**
 * Small helpers over libpg-query's JSON AST. A node is `{ Kind: { …fields } }`.
 */
export type AstNode = Record<string, unknown>;
export type AstFields = Record<string, unknown>;

export function nodeKind(node: unknown): string | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const keys = Object.keys(node);
  return keys.length === 1 ? keys[0] : undefined;
}

export function fieldsOf(node: unknown, kind: string): AstFields | undefined {
  if (nodeKind(node) !== kind) return undefined;
  return (node as AstNode)[kind] as AstFields;
}

export function stringValue(node: unknown): string | undefined {
  const s = fieldsOf(node, 'String');
  return s ? (s.sval as string | undefined) ?? '' : undefined;
}

/** The dotted parts of a ColumnRef, or undefined (also for `*`). */
export function columnRefParts(node: unknown): string[] | undefined {
  const ref = fieldsOf(node, 'ColumnRef');
  if (!ref) return undefined;
  const parts = (ref.fields as unknown[]).map(stringValue);
  return parts.every((p) => p !== undefined) ? (parts as string[]) : undefined;
}

export function isStar(node: unknown): boolean {
  const ref = fieldsOf(node, 'ColumnRef');
  return !!ref && (ref.fields as unknown[]).some((f) => nodeKind(f) === 'A_Star');
}

/** Last part of a function name, lower-cased as PostgreSQL folds it. */
export function functionName(call: AstFields): string {
  const parts = (call.funcname as unknown[]).map(stringValue);
  return parts[parts.length - 1] ?? '';
}

/** Visits every node below `root` (depth first, parents before children). Return false to skip children. */
export function walk(root: unknown, visit: (node: AstNode, kind: string) => boolean | void): void {
  if (Array.isArray(root)) {
    for (const item of root) walk(item, visit);
    return;
  }
  if (!root || typeof root !== 'object') return;
  const kind = nodeKind(root);
  if (kind && /^[A-Z]/.test(kind)) {
    if (visit(root as AstNode, kind) === false) return;
    walk((root as AstNode)[kind], visit);
    return;
  }
  for (const value of Object.values(root)) walk(value, visit);
}

/** Returns a copy of `root` where `replace` may substitute any node (children of a replaced node are not visited). */
export function transform(root: unknown, replace: (node: AstNode, kind: string) => unknown | undefined): unknown {
  if (Array.isArray(root)) return root.map((item) => transform(item, replace));
  if (!root || typeof root !== 'object') return root;
  const kind = nodeKind(root);
  if (kind && /^[A-Z]/.test(kind)) {
    const substitute = replace(root as AstNode, kind);
    if (substitute !== undefined) return substitute;
  }
  const out: AstNode = {};
  for (const [key, value] of Object.entries(root)) out[key] = transform(value, replace);
  return out;
}

/**
 * Replaces every function call `matches` picks, at any depth, with what
 * `replace` makes of it (its arguments already rewritten); an unnamed
 * select-list column that was such a call keeps the call's name, as
 * PostgreSQL would have named it. Null when nothing matches.
 */
export function rewriteCalls<T>(root: T, matches: (call: AstFields) => boolean, replace: (call: AstFields) => AstNode): T | null {
  let uses = false;
  walk(root, (node, kind) => {
    if (kind === 'FuncCall' && matches(node.FuncCall as AstFields)) uses = true;
  });
  if (!uses) return null;
  walk(root, (node, kind) => {
    const target = kind === 'ResTarget' ? (node.ResTarget as AstFields) : undefined;
    const call = target && !target.name ? fieldsOf(target.val, 'FuncCall') : undefined;
    if (target && call && matches(call)) target.name = functionName(call);
  });
  const rewrite = (node: unknown): unknown =>
    transform(node, (child, kind) => {
      if (kind !== 'FuncCall' || !matches(child.FuncCall as AstFields)) return undefined;
      const call = child.FuncCall as AstFields;
      return replace({ ...call, args: rewrite(call.args) });
    });
  return rewrite(root) as T;
}

/** Structural equality ignoring source locations. */
export function sameExpression(a: unknown, b: unknown): boolean {
  return fingerprint(a) === fingerprint(b);
}

export function fingerprint(node: unknown): string {
  return JSON.stringify(node, (key, value) => (key === 'location' ? undefined : value));
}

/** Indirection targets the deparser prints with the parentheses they need. */
const selfBracketed = new Set(['ColumnRef', 'FuncCall', 'ParamRef', 'RowExpr', 'SubLink']);

export function deparse(node: unknown): string {
  return deparseSync(bracketIndirections(node) as never);
}

/**
 * pgsql-deparser drops the parentheses of `(coalesce(a, b)).x` and
 * `(ARRAY[…])[1]`, which PostgreSQL then cannot parse; such a target is
 * wrapped in a scalar sub-select, which prints in parentheses and means the same.
 */
function bracketIndirections(root: unknown): unknown {
  return transform(root, (node, kind) => {
    if (kind !== 'A_Indirection') return undefined;
    const fields = node.A_Indirection as AstFields;
    const arg = bracketIndirections(fields.arg);
    const argKind = nodeKind(arg) ?? '';
    const wrapped = selfBracketed.has(argKind)
      ? arg
      : { SubLink: { subLinkType: 'EXPR_SUBLINK', subselect: { SelectStmt: { targetList: [{ ResTarget: { val: arg } }], limitOption: 'LIMIT_OPTION_DEFAULT', op: 'SETOP_NONE' } } } };
    return { A_Indirection: { ...fields, arg: wrapped, indirection: bracketIndirections(fields.indirection) } };
  });
}
