import { compile, comparisonPrefix, constantValue, fixedInterval, outputText, isDateTruncUnit, posixRegExp, zoneFreeUnits, type Expr, type ExprType } from '../engine/expressions/index.ts';
import type { Stream } from '../engine/stream.ts';
import { canonicalTypeName } from '../engine/values/index.ts';
import { columnRefParts, fieldsOf, functionName, nodeKind, stringValue, type AstFields, type AstNode } from './ast.ts';

/**
 * Translates an expression of a continuous view (over its stream's columns)
 * into one the engine evaluates itself, resolving operators and functions
 * to their types as PostgreSQL does for the cases covered: arithmetic and
 * comparisons on integers, double precision, booleans and text, AND/OR/NOT,
 * IS [NOT] NULL/DISTINCT FROM/TRUE, IN, BETWEEN, CASE, COALESCE, NULLIF,
 * GREATEST/LEAST, LIKE/ILIKE, regular expressions both read alike, casts
 * between those types, and the common string and math functions.
 * Undefined for anything else: the store evaluates it, so nothing is refused.
 */
export function compileExpression(node: unknown, stream: Stream, expected: string): Expr | undefined {
  let typed: Typed | undefined;
  try {
    typed = translate(node, stream);
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  if (!typed) return undefined;
  const expr = typed.type === 'unknown' ? resolve(typed, 'text') : typed.type === 'interval' ? undefined : typed.expr;
  // The safety net: the type worked out here must be PostgreSQL's own (varchar holds text).
  const want = expected === 'varchar' ? 'text' : expected;
  // jsonb is read inside expressions, never handed on as a value.
  return expr && expr.type === want && want !== 'jsonb' ? expr : undefined;
}

class Unsupported extends Error {}

function unsupported(): never {
  throw new Unsupported();
}

/** An expression being translated: `unknown` is an untyped literal (its text), typed by its context. */
type Typed =
  | { type: ExprType; expr: Expr }
  | { type: 'unknown'; text: string | null }
  /** An interval constant of fixed length (days apart: a day in a time zone may not be 24 hours). */
  | { type: 'interval'; micros: number; days: number };

const streamTypes: Record<string, ExprType> = { int2: 'int2', int4: 'int4', int8: 'int8', numeric: 'numeric', float8: 'float8', bool: 'bool', text: 'text', varchar: 'text' };
/** Column types the engine holds as their text and reads when an expression needs them. */
const heldAsText: Record<string, ExprType> = { jsonb: 'jsonb', timestamptz: 'timestamptz', timestamp: 'timestamp' };
const numberRank: Record<string, number> = { int2: 1, int4: 2, int8: 3, numeric: 3.5, float8: 4 };

function typed(expr: Expr): Typed {
  return { type: expr.type, expr: folded(expr) };
}

/**
 * A call or cast of constants evaluated now, as PostgreSQL's planner folds
 * it: `CASE WHEN x > 0 THEN 1 ELSE 1/0 END` fails every time in PostgreSQL,
 * so the store evaluates such an expression (and reports the error).
 */
function folded(expr: Expr): Expr {
  if ((expr.kind !== 'call' && expr.kind !== 'cast') || expr.type === 'jsonb') return expr;
  const args = expr.kind === 'call' ? expr.args : [expr.arg];
  if (!args.every((a) => a.kind === 'const')) return expr;
  try {
    const value = compile(expr)({ length: 0, columns: [] }, 0);
    return { kind: 'const', text: value === null ? null : outputText(expr.type, value), type: expr.type };
  } catch {
    return unsupported();
  }
}

function translate(node: unknown, stream: Stream): Typed {
  switch (nodeKind(node)) {
    case 'ColumnRef':
      return column(node, stream);
    case 'A_Const':
      return constant(fieldsOf(node, 'A_Const') as AstFields);
    case 'TypeCast':
      return cast(fieldsOf(node, 'TypeCast') as AstFields, stream);
    case 'A_Expr':
      return operator(fieldsOf(node, 'A_Expr') as AstFields, stream);
    case 'BoolExpr':
      return boolean(fieldsOf(node, 'BoolExpr') as AstFields, stream);
    case 'NullTest': {
      const test = fieldsOf(node, 'NullTest') as AstFields;
      const arg = known(translate(test.arg, stream), 'text');
      return typed({ kind: 'isNull', arg, negated: test.nulltesttype === 'IS_NOT_NULL', type: 'bool' });
    }
    case 'BooleanTest': {
      const test = fieldsOf(node, 'BooleanTest') as AstFields;
      const arg = expect(translate(test.arg, stream), 'bool');
      const [, negated, what] = /^IS_(NOT_)?(TRUE|FALSE|UNKNOWN)$/.exec(test.booltesttype as string) ?? unsupported();
      return typed({ kind: 'boolTest', arg, test: what.toLowerCase() as 'true' | 'false' | 'unknown', negated: negated !== undefined, type: 'bool' });
    }
    case 'CaseExpr':
      return caseExpression(fieldsOf(node, 'CaseExpr') as AstFields, stream);
    case 'CoalesceExpr': {
      const args = ((fieldsOf(node, 'CoalesceExpr') as AstFields).args as AstNode[]).map((a) => translate(a, stream));
      const type = commonType(args);
      return typed({ kind: 'coalesce', args: args.map((a) => resolve(a, type)), type });
    }
    case 'MinMaxExpr': {
      const minMax = fieldsOf(node, 'MinMaxExpr') as AstFields;
      const args = (minMax.args as AstNode[]).map((a) => translate(a, stream));
      const type = commonType(args);
      if (type === 'text') unsupported(); // text orders by collation
      return typed({ kind: minMax.op === 'IS_GREATEST' ? 'greatest' : 'least', args: args.map((a) => resolve(a, type)), type });
    }
    case 'FuncCall':
      return call(fieldsOf(node, 'FuncCall') as AstFields, stream);
    default:
      return unsupported();
  }
}

function column(node: unknown, stream: Stream): Typed {
  const parts = columnRefParts(node);
  if (parts?.length !== 1) unsupported();
  const position = stream.position(parts[0]);
  if (position === undefined) unsupported();
  // jsonb arrives as its text, parsed when read; the other types as the engine's typed values.
  const held = heldAsText[stream.columns[position].typeName];
  if (held) return typed({ kind: 'column', position, type: held });
  const type = stream.inputs[position] ? streamTypes[canonicalTypeName(stream.columns[position].typeName) ?? ''] : undefined;
  if (!type) unsupported();
  return typed({ kind: 'column', position, type });
}

function constant(c: AstFields): Typed {
  if (c.isnull) return { type: 'unknown', text: null };
  if (c.ival) return typed({ kind: 'const', text: String((c.ival as { ival?: number }).ival ?? 0), type: 'int4' });
  if (c.boolval) return typed({ kind: 'const', text: (c.boolval as { boolval?: boolean }).boolval ? 't' : 'f', type: 'bool' });
  if (c.sval) return { type: 'unknown', text: (c.sval as { sval?: string }).sval ?? '' };
  if (c.fval) {
    const text = (c.fval as { fval: string }).fval;
    // An integer literal past int4 is int8 when it fits, else numeric (-2147483648 arrives here and is int4).
    if (/^-?\d+$/.test(text) && BigInt(text) >= -(2n ** 31n) && BigInt(text) < 2n ** 31n) return typed({ kind: 'const', text, type: 'int4' });
    if (/^-?\d+$/.test(text) && BigInt(text) >= -(2n ** 63n) && BigInt(text) < 2n ** 63n) return typed({ kind: 'const', text, type: 'int8' });
    return typed({ kind: 'const', text, type: 'numeric' });
  }
  return unsupported();
}

/** An untyped literal given a type, as PostgreSQL coerces it; a typed expression cast implicitly (integers, numeric, double precision). */
function resolve(t: Typed, type: ExprType): Expr {
  if (t.type === 'unknown') {
    // A literal the engine cannot read as the type (PostgreSQL's error, a spelling left to the store) stays SQL.
    try {
      constantValue(t.text, type);
    } catch {
      unsupported();
    }
    return { kind: 'const', text: t.text, type };
  }
  if (t.type === 'interval') return unsupported();
  if (t.type === type) return t.expr;
  if (numberRank[t.type] && numberRank[type] && numberRank[t.type] < numberRank[type]) return { kind: 'cast', arg: t.expr, type };
  return unsupported();
}

function known(t: Typed, fallback: ExprType): Expr {
  return t.type === 'unknown' ? resolve(t, fallback) : t.type === 'interval' ? unsupported() : t.expr;
}

/** An interval constant: a typed one, or a literal where an interval is expected. */
function interval(t: Typed): { micros: number; days: number } {
  if (t.type === 'interval') return t;
  if (t.type === 'unknown' && t.text !== null) return fixedInterval(t.text) ?? unsupported();
  return unsupported();
}

function expect(t: Typed, type: ExprType): Expr {
  const expr = resolve(t, type);
  if (expr.type !== type) unsupported();
  return expr;
}

/** The type several expressions are compared or combined in (PostgreSQL's common type for these). */
function commonType(args: Typed[]): ExprType {
  const types = new Set(args.map((a) => a.type).filter((t) => t !== 'unknown'));
  if (types.size === 0) return 'text';
  if (types.has('jsonb') || types.has('interval')) unsupported();
  if ([...types].every((t) => numberRank[t])) return [...types].reduce((a, b) => (numberRank[a] >= numberRank[b] ? a : b)) as ExprType;
  if (types.size === 1) return [...types][0] as ExprType;
  return unsupported();
}

const castTargets: Record<string, ExprType> = {
  int2: 'int2', int4: 'int4', int8: 'int8', numeric: 'numeric', float8: 'float8', bool: 'bool', text: 'text', varchar: 'text', timestamptz: 'timestamptz', timestamp: 'timestamp',
};

function cast(c: AstFields, stream: Stream): Typed {
  const typeName = c.typeName as AstFields;
  if ((typeName.typmods as unknown[] | undefined)?.length || (typeName.arrayBounds as unknown[] | undefined)?.length) unsupported();
  const names = (typeName.names as unknown[]).map(stringValue);
  if (names[names.length - 1] === 'interval') return { type: 'interval', ...interval(translate(c.arg, stream)) };
  const name = names[names.length - 1] ?? '';
  const target = castTargets[canonicalTypeName(name) ?? name];
  if (!target) unsupported();
  const arg = translate(c.arg, stream);
  // jsonb prints normalized, timestamptz in the session's zone: the store's job.
  if (arg.type === 'jsonb' || arg.type === 'timestamptz') unsupported();
  if (arg.type === 'unknown') return typed(resolve(arg, target));
  if (arg.type === 'interval') return unsupported();
  if (arg.type === target) return arg;
  const castable =
    target === 'text' ||
    arg.type === 'text' ||
    // float8 to numeric keeps 15 significant digits (float8_numeric): the store's job.
    (numberRank[arg.type] && numberRank[target] && !(arg.type === 'float8' && target === 'numeric')) ||
    (arg.type === 'bool' && target === 'int4') ||
    (arg.type === 'int4' && target === 'bool');
  if (!castable) unsupported();
  return typed({ kind: 'cast', arg: arg.expr, type: target });
}

const arithmetic: Record<string, string> = { '+': 'pl', '-': 'mi', '*': 'mul', '/': 'div', '%': 'mod' };
const comparison: Record<string, string> = { '=': 'eq', '<>': 'ne', '!=': 'ne', '<': 'lt', '>': 'gt', '<=': 'le', '>=': 'ge' };
const patternOperators: Record<string, string> = { '~~': 'like', '!~~': 'notlike', '~~*': 'ilike', '!~~*': 'notilike', '~': 'regex', '!~': 'notregex', '~*': 'iregex', '!~*': 'notiregex' };

function operator(e: AstFields, stream: Stream): Typed {
  const name = stringValue((e.name as unknown[])[0]) ?? '';
  const kind = e.kind as string;
  if (kind === 'AEXPR_IN') return inList(e, name, stream);
  if (kind === 'AEXPR_BETWEEN' || kind === 'AEXPR_NOT_BETWEEN') {
    const [low, high] = ((e.rexpr as AstFields).List as AstFields).items as AstNode[];
    const x = translate(e.lexpr, stream);
    const between = kind === 'AEXPR_BETWEEN';
    const args = [compare(between ? '>=' : '<', x, translate(low, stream)), compare(between ? '<=' : '>', x, translate(high, stream))];
    return typed({ kind: between ? 'and' : 'or', args, type: 'bool' });
  }
  if (kind === 'AEXPR_DISTINCT' || kind === 'AEXPR_NOT_DISTINCT') {
    const [a, b] = [translate(e.lexpr, stream), translate(e.rexpr, stream)];
    const type = commonType([a, b]);
    return typed({ kind: 'distinct', args: [resolve(a, type), resolve(b, type)], eq: `${comparisonPrefix(type)}eq`, negated: kind === 'AEXPR_NOT_DISTINCT', type: 'bool' });
  }
  if (kind === 'AEXPR_NULLIF') {
    const [a, b] = [translate(e.lexpr, stream), translate(e.rexpr, stream)];
    const type = commonType([a, b]);
    const first = resolve(a, type);
    // NULLIF gives its first argument's type: only when that is the common one.
    if (a.type !== 'unknown' && a.type !== type) unsupported();
    return typed({ kind: 'nullif', args: [first, resolve(b, type)], eq: `${comparisonPrefix(type)}eq`, type });
  }
  if (kind === 'AEXPR_LIKE' || kind === 'AEXPR_ILIKE' || (kind === 'AEXPR_OP' && patternOperators[name])) {
    return pattern(name, translate(e.lexpr, stream), translate(e.rexpr, stream));
  }
  if (kind !== 'AEXPR_OP') unsupported();
  if (!e.lexpr) {
    // Unary minus (a negative literal is already a constant).
    if (name !== '-') unsupported();
    const arg = translate(e.rexpr, stream);
    if (arg.type === 'unknown' || arg.type === 'interval' || !numberRank[arg.type]) unsupported();
    return typed({ kind: 'call', fn: `${arg.type}um`, args: [arg.expr], type: arg.type });
  }
  const [a, b] = [translate(e.lexpr, stream), translate(e.rexpr, stream)];
  if (a.type === 'jsonb') return jsonbOperator(name, a.expr, b);
  if (comparison[name]) return typed(compare(name, a, b));
  if (name === '||') return concatenate(a, b);
  if (!arithmetic[name]) unsupported();
  if (a.type === 'interval' || b.type === 'interval') return timestampPlusInterval(name, a, b);
  const type = commonType([a, b]);
  // numeric division's scale rules are the store's; float8 has no %.
  if (!numberRank[type] || (name === '%' && type === 'float8') || (type === 'numeric' && (name === '/' || name === '%'))) unsupported();
  return typed({ kind: 'call', fn: `${type}${arithmetic[name]}`, args: [resolve(a, type), resolve(b, type)], type });
}

/** jsonb's `->`, `->>` (by key or array index), `#>`, `#>>` (constant paths) and `?`. */
function jsonbOperator(name: string, doc: Expr, b: Typed): Typed {
  if (name === '#>' || name === '#>>') {
    const path = b.type === 'unknown' && b.text !== null ? simpleTextArray(b.text) : undefined;
    if (!path) unsupported();
    return typed({ kind: 'jsonbPath', arg: doc, path, type: name === '#>' ? 'jsonb' : 'text' });
  }
  if (name === '?') return typed({ kind: 'call', fn: 'jsonb_exists', args: [doc, expect(b, 'text')], type: 'bool' });
  if (name !== '->' && name !== '->>') unsupported();
  // An untyped literal is a key (text), as PostgreSQL resolves it; an integer is an array index.
  const byIndex = b.type === 'int4' || b.type === 'int2';
  const key = byIndex ? resolve(b, 'int4') : expect(b, 'text');
  const fn = `jsonb_${byIndex ? 'array_element' : 'object_field'}${name === '->>' ? '_text' : ''}`;
  return typed({ kind: 'call', fn, args: [doc, key], type: name === '->>' ? 'text' : 'jsonb' });
}

/** A text[] literal of plain elements ('{a,b,0}'); undefined for anything quoted, nested or NULL. */
function simpleTextArray(text: string): string[] | undefined {
  const match = /^\{([^"{}\\]*)\}$/.exec(text.trim());
  if (!match) return undefined;
  const items = match[1] === '' ? [] : match[1].split(',').map((i) => i.trim());
  return items.some((i) => i === '' || i.toUpperCase() === 'NULL') ? undefined : items;
}

/** ts ± interval (and interval + ts): a fixed length; days only on timestamp (on timestamptz they follow the time zone). */
function timestampPlusInterval(name: string, a: Typed, b: Typed): Typed {
  const [ts, iv] = a.type === 'interval' ? [b, a] : [a, b];
  if (iv.type !== 'interval' || (name !== '+' && !(name === '-' && a === ts))) unsupported();
  if (ts.type !== 'timestamp' && ts.type !== 'timestamptz') unsupported();
  if (ts.type === 'timestamptz' && iv.days !== 0) unsupported();
  const micros = (iv.micros + iv.days * 86_400_000_000) * (name === '-' ? -1 : 1);
  return typed({ kind: 'call', fn: 'timestamp_pl_micros', args: [ts.expr, microseconds(String(micros))], type: ts.type });
}

function compare(name: string, a: Typed, b: Typed): Expr {
  const type = commonType([a, b]);
  const op = comparison[name] ?? unsupported();
  // Text orders by the store's collation: only equality is the engine's.
  if (type === 'text' && op !== 'eq' && op !== 'ne') unsupported();
  return { kind: 'call', fn: `${comparisonPrefix(type)}${op}`, args: [resolve(a, type), resolve(b, type)], type: 'bool' };
}

function inList(e: AstFields, name: string, stream: Stream): Typed {
  if (name !== '=' && name !== '<>') unsupported();
  const arg = translate(e.lexpr, stream);
  const items = (((e.rexpr as AstFields).List as AstFields | undefined)?.items as AstNode[] | undefined) ?? unsupported();
  const translated = items.map((i) => translate(i, stream));
  const type = commonType([arg, ...translated]);
  if (type === 'text' && arg.type !== 'text' && arg.type !== 'unknown') unsupported();
  return typed({ kind: 'in', arg: resolve(arg, type), items: translated.map((i) => resolve(i, type)), eq: `${comparisonPrefix(type)}eq`, negated: name === '<>', type: 'bool' });
}

/** `||`: text with text, or with any other type as its text (anynonarray || text). */
function concatenate(a: Typed, b: Typed): Typed {
  const asText = (t: Typed): Expr => {
    if (t.type === 'unknown') return resolve(t, 'text');
    if (t.type === 'interval' || t.type === 'jsonb' || t.type === 'timestamptz') return unsupported();
    return t.type === 'text' ? t.expr : { kind: 'cast', arg: t.expr, type: 'text' };
  };
  if (a.type !== 'text' && b.type !== 'text' && !(a.type === 'unknown' || b.type === 'unknown')) unsupported();
  return typed({ kind: 'call', fn: 'textcat', args: [asText(a), asText(b)], type: 'text' });
}

function pattern(name: string, subject: Typed, pat: Typed): Typed {
  const fn = patternOperators[name] ?? unsupported();
  const s = expect(subject, 'text');
  const p = expect(pat, 'text');
  if (fn.includes('regex')) {
    // Only constant patterns both engines read alike.
    if (p.kind !== 'const' || p.text === null || !posixRegExp(p.text, fn.startsWith('i') || fn.startsWith('noti'))) unsupported();
  }
  return typed({ kind: 'call', fn, args: [s, p], type: 'bool' });
}

function boolean(e: AstFields, stream: Stream): Typed {
  const args = (e.args as AstNode[]).map((a) => expect(translate(a, stream), 'bool'));
  if (e.boolop === 'NOT_EXPR') return typed({ kind: 'not', arg: args[0], type: 'bool' });
  return typed({ kind: e.boolop === 'AND_EXPR' ? 'and' : 'or', args, type: 'bool' });
}

function caseExpression(c: AstFields, stream: Stream): Typed {
  const subject = c.arg === undefined ? undefined : translate(c.arg, stream);
  const whens = (c.args as AstNode[]).map((w) => fieldsOf(w, 'CaseWhen') as AstFields);
  const results = [...whens.map((w) => translate(w.result, stream)), ...(c.defresult ? [translate(c.defresult, stream)] : [])];
  const type = commonType(results);
  return typed({
    kind: 'case',
    whens: whens.map((w, i) => ({
      when: subject ? compare('=', subject, translate(w.expr, stream)) : expect(translate(w.expr, stream), 'bool'),
      then: resolve(results[i], type),
    })),
    otherwise: c.defresult ? resolve(results[results.length - 1], type) : null,
    type,
  });
}

/** A count of microseconds for the timestamp functions, which compute in doubles (exact to 2^53 µs, about 285 years). */
function microseconds(text: string): Expr {
  return { kind: 'const', text, type: 'float8' };
}

function dateBinOf(stride: { micros: number; days: number }, ts: Expr, originMicros: string): Typed {
  const micros = stride.micros + stride.days * 86_400_000_000;
  // A zero stride is PostgreSQL's error to give.
  if (micros <= 0) unsupported();
  return typed({ kind: 'call', fn: 'date_bin', args: [microseconds(String(micros)), ts, microseconds(originMicros)], type: ts.type });
}

/** Functions by name: argument types (after implicit casts) and the engine function, per argument count. */
const textFunctions: Record<string, Record<number, { args: ExprType[]; fn: string; type: ExprType }>> = {
  lower: { 1: { args: ['text'], fn: 'lower', type: 'text' } },
  upper: { 1: { args: ['text'], fn: 'upper', type: 'text' } },
  length: { 1: { args: ['text'], fn: 'length', type: 'int4' } },
  char_length: { 1: { args: ['text'], fn: 'length', type: 'int4' } },
  character_length: { 1: { args: ['text'], fn: 'length', type: 'int4' } },
  octet_length: { 1: { args: ['text'], fn: 'octet_length', type: 'int4' } },
  substr: { 2: { args: ['text', 'int4'], fn: 'substr2', type: 'text' }, 3: { args: ['text', 'int4', 'int4'], fn: 'substr3', type: 'text' } },
  substring: { 2: { args: ['text', 'int4'], fn: 'substr2', type: 'text' }, 3: { args: ['text', 'int4', 'int4'], fn: 'substr3', type: 'text' } },
  left: { 2: { args: ['text', 'int4'], fn: 'left', type: 'text' } },
  right: { 2: { args: ['text', 'int4'], fn: 'right', type: 'text' } },
  btrim: { 1: { args: ['text'], fn: 'btrim1', type: 'text' }, 2: { args: ['text', 'text'], fn: 'btrim2', type: 'text' } },
  ltrim: { 1: { args: ['text'], fn: 'ltrim1', type: 'text' }, 2: { args: ['text', 'text'], fn: 'ltrim2', type: 'text' } },
  rtrim: { 1: { args: ['text'], fn: 'rtrim1', type: 'text' }, 2: { args: ['text', 'text'], fn: 'rtrim2', type: 'text' } },
  replace: { 3: { args: ['text', 'text', 'text'], fn: 'replace', type: 'text' } },
  strpos: { 2: { args: ['text', 'text'], fn: 'strpos', type: 'int4' } },
  starts_with: { 2: { args: ['text', 'text'], fn: 'starts_with', type: 'bool' } },
  sqrt: { 1: { args: ['float8'], fn: 'dsqrt', type: 'float8' } },
};

/** Functions of one number whose implementation follows its type. */
const numberFunctions: Record<string, { types: ExprType[]; fn: (type: ExprType) => string }> = {
  abs: { types: ['int2', 'int4', 'int8', 'numeric', 'float8'], fn: (t) => `${t}abs` },
  floor: { types: ['float8'], fn: () => 'floor' },
  ceil: { types: ['float8'], fn: () => 'ceil' },
  ceiling: { types: ['float8'], fn: () => 'ceil' },
  round: { types: ['float8'], fn: () => 'dround' },
  trunc: { types: ['float8'], fn: () => 'dtrunc' },
};

function call(f: AstFields, stream: Stream): Typed {
  if (f.agg_star || f.agg_distinct || f.agg_filter || f.agg_order || f.over || f.func_variadic) unsupported();
  const names = (f.funcname as unknown[]).map(stringValue);
  if (names.length > 2 || (names.length === 2 && names[0] !== 'pg_catalog')) unsupported();
  const name = functionName(f);
  const args = ((f.args as AstNode[] | undefined) ?? []).map((a) => translate(a, stream));
  const signature = textFunctions[name]?.[args.length];
  if (signature) {
    const resolved = args.map((a, i) => {
      const want = signature.args[i];
      // An untyped literal could pick another overload (substring(x, 'pattern')): typed arguments only, text apart;
      // a numeric picks the numeric one (sqrt(numeric)).
      if ((a.type === 'unknown' && want !== 'text') || (a.type === 'numeric' && want !== 'numeric')) unsupported();
      const expr = resolve(a, want);
      if (expr.type !== want) unsupported();
      return expr;
    });
    return typed({ kind: 'call', fn: signature.fn, args: resolved, type: signature.type });
  }
  const numeric = numberFunctions[name];
  if (numeric && args.length === 1) {
    const arg = args[0];
    if (arg.type === 'unknown' || arg.type === 'interval' || !numeric.types.includes(arg.type)) unsupported();
    return typed({ kind: 'call', fn: numeric.fn(arg.type), args: [arg.expr], type: arg.type });
  }
  if (name === 'date_trunc' && args.length === 2) {
    // date_trunc('unit', ts): a constant unit; on timestamptz only the units no time zone changes.
    const [unit, ts] = args;
    if (unit.type !== 'unknown' || unit.text === null || !isDateTruncUnit(unit.text)) unsupported();
    if (ts.type !== 'timestamp' && (ts.type !== 'timestamptz' || !zoneFreeUnits.has(unit.text))) unsupported();
    return typed({ kind: 'call', fn: 'date_trunc', args: [resolve(unit, 'text'), ts.expr], type: ts.type });
  }
  if ((name === 'minute' || name === 'second') && args.length === 1 && args[0].type === 'timestamptz') {
    // PipelineDB's minute(ts), second(ts): date_trunc, zone-free at these units.
    return typed({ kind: 'call', fn: 'date_trunc', args: [{ kind: 'const', text: name, type: 'text' }, args[0].expr], type: 'timestamptz' });
  }
  if (name === 'date_round' && args.length === 2 && args[0].type === 'timestamptz') {
    // PipelineDB's date_round(ts, step): date_bin from 2000-01-01 00:00 UTC.
    return dateBinOf(interval(args[1]), args[0].expr, String(Date.UTC(2000, 0, 1) * 1000));
  }
  if (name === 'date_bin' && args.length === 3 && (args[1].type === 'timestamptz' || args[1].type === 'timestamp')) {
    const origin = resolve(args[2], args[1].type);
    if (origin.kind !== 'const' || origin.text === null) unsupported();
    return dateBinOf(interval(args[0]), args[1].expr, String(constantValue(origin.text, origin.type)));
  }
  if (name === 'mod' && args.length === 2) {
    const type = commonType(args);
    if (!numberRank[type] || type === 'float8' || type === 'numeric') unsupported();
    return typed({ kind: 'call', fn: `${type}mod`, args: args.map((a) => resolve(a, type)), type });
  }
  return unsupported();
}
