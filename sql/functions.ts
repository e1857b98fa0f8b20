import { SqlError, SqlState } from '../engine/errors.ts';
import type { AstFields, AstNode } from './ast.ts';
import { deparse, fieldsOf, isStar, nodeKind, stringValue } from './ast.ts';
import type { StatementContext, StatementResult } from './context.ts';

/**
 * Functions Sluice implements itself (pipeline_kafka.*, engine-side
 * pipelinedb.*), called the PipelineDB way: `SELECT schema.fn(args)`.
 * Arguments may be positional or named (`format := 'json'`) and any
 * expression: the serving store evaluates them, so casts and defaults behave
 * as in PostgreSQL.
 */
export interface FunctionParameter {
  name: string;
  /** Used when the caller leaves the argument out. */
  default?: string | null;
  /** Omitted from the call → the function sees undefined (PipelineDB's "all" forms). */
  optional?: boolean;
}

export type FunctionArguments = Record<string, string | null | undefined>;

export interface SluiceFunction {
  schema: string;
  name: string;
  parameters: FunctionParameter[];
  /** Type of the single result column (PostgreSQL type oid; 25 = text)… */
  resultType: number;
  /** …or, for a function returning records, its columns. */
  resultColumns?: { name: string; typeOid: number }[];
  /** One value, a set of values, or rows of `resultColumns`. */
  call(ctx: StatementContext, args: FunctionArguments): Promise<string | null | (string | null)[] | { rows: (string | null)[][] }>;
}

const textOid = 25;

export class FunctionRegistry {
  private readonly functions = new Map<string, SluiceFunction>();

  register(fn: SluiceFunction): void {
    this.functions.set(`${fn.schema}.${fn.name}`, fn);
  }

  lookup(schema: string, name: string): SluiceFunction | undefined {
    return this.functions.get(`${schema}.${name}`);
  }

  /** The function a `SELECT schema.fn(…)` statement calls, if it is one of ours. */
  callOf(select: AstFields): { fn: SluiceFunction; call: AstFields; alias?: string } | undefined {
    if (select.whereClause || select.groupClause || select.valuesLists || select.sortClause || select.limitCount) return undefined;
    if (select.fromClause) return this.callInFrom(select);
    const targets = (select.targetList as AstNode[] | undefined) ?? [];
    if (targets.length !== 1) return undefined;
    const target = fieldsOf(targets[0], 'ResTarget') as AstFields;
    const call = fieldsOf(target.val, 'FuncCall');
    if (!call) return undefined;
    const fn = this.functionOf(call);
    return fn && { fn, call, alias: target.name as string | undefined };
  }

  /** `SELECT * FROM schema.fn(…)`. */
  private callInFrom(select: AstFields): { fn: SluiceFunction; call: AstFields } | undefined {
    const from = select.fromClause as AstNode[];
    const targets = (select.targetList as AstNode[] | undefined) ?? [];
    const star = targets.length === 1 && nodeKind((fieldsOf(targets[0], 'ResTarget') as AstFields).val) === 'ColumnRef' && isStar((fieldsOf(targets[0], 'ResTarget') as AstFields).val);
    const range = from.length === 1 ? fieldsOf(from[0], 'RangeFunction') : undefined;
    if (!star || !range) return undefined;
    const functions = range.functions as AstNode[];
    const first = fieldsOf(functions?.[0], 'List')?.items as AstNode[] | undefined;
    const call = fieldsOf(first?.[0], 'FuncCall');
    const fn = call && this.functionOf(call);
    return fn && call && { fn, call };
  }

  private functionOf(call: AstFields): SluiceFunction | undefined {
    const parts = (call.funcname as unknown[]).map(stringValue) as string[];
    return parts.length === 2 ? this.lookup(parts[0], parts[1]) : undefined;
  }
}

export { textOid };

/** Runs a call: binds the arguments, evaluates them in the store, calls the function. */
export async function runFunctionCall(ctx: StatementContext, fn: SluiceFunction, call: AstFields, alias?: string): Promise<StatementResult> {
  const args = await bindArguments(ctx, fn, (call.args as AstNode[] | undefined) ?? []);
  const result = await fn.call(ctx, args);
  const rows = result !== null && typeof result === 'object' && !Array.isArray(result) ? result.rows : (Array.isArray(result) ? result : [result]).map((v) => [v]);
  return { tag: `SELECT ${rows.length}`, columns: resultColumns(fn, alias), rows };
}

export function resultColumns(fn: SluiceFunction, alias?: string): { name: string; typeOid: number }[] {
  return fn.resultColumns ?? [{ name: alias ?? fn.name, typeOid: fn.resultType }];
}

async function bindArguments(ctx: StatementContext, fn: SluiceFunction, args: AstNode[]): Promise<FunctionArguments> {
  const expressions = new Map<string, AstNode>();
  let position = 0;
  for (const arg of args) {
    const named = fieldsOf(arg, 'NamedArgExpr');
    if (named) {
      const name = named.name as string;
      if (!fn.parameters.some((p) => p.name === name)) throw unknownFunction(fn, `has no parameter named "${name}"`);
      expressions.set(name, named.arg as AstNode);
      continue;
    }
    const parameter = fn.parameters[position++];
    if (!parameter) throw unknownFunction(fn, `takes at most ${fn.parameters.length} arguments`);
    expressions.set(parameter.name, arg);
  }
  const names = [...expressions.keys()];
  const values = names.length
    ? (await ctx.conn.query(`SELECT ${names.map((n) => `(${deparse(expressions.get(n))})::text`).join(', ')}`, ctx.params)).rows[0]
    : [];
  const bound: FunctionArguments = {};
  for (const parameter of fn.parameters) {
    const index = names.indexOf(parameter.name);
    if (index >= 0) bound[parameter.name] = values[index] ?? null;
    else if (parameter.default !== undefined) bound[parameter.name] = parameter.default;
    else if (!parameter.optional) throw unknownFunction(fn, `needs the argument "${parameter.name}"`);
  }
  return bound;
}

function unknownFunction(fn: SluiceFunction, why: string): SqlError {
  return new SqlError(SqlState.undefinedFunction, `function ${fn.schema}.${fn.name} ${why}`, {
    hint: `${fn.schema}.${fn.name}(${fn.parameters.map((p) => p.name + (p.default !== undefined || p.optional ? ' := …' : '')).join(', ')})`,
  });
}

/** A required text argument, or a clear error. */
export function required(args: FunctionArguments, name: string): string {
  const value = args[name];
  if (value === null || value === undefined) throw new SqlError(SqlState.nullValueNotAllowed, `argument "${name}" must not be NULL`);
  return value;
}

