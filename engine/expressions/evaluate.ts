import type { RowBatch } from '../batch.ts';
import { numericInputFunction, parseBool, parseFloat8, parseInt2, parseInt4, parseInt8, type NonNullValue, type Value } from '../values/index.ts';
import type { Expr, ExprType } from './expr.ts';
import { castFunction, functions } from './functions.ts';
import { jsonbPath, jsonbText, parseJsonb, type Jsonb } from './jsonb.ts';
import { parseTimestamp, parseTimestamptz } from './timestamp.ts';

/** A compiled expression: its value for row `r` of a batch. */
export type Evaluator = (batch: RowBatch, r: number) => Value;

/** Each type's input function (what a text literal or a text cast reads). */
export const parsers: Record<ExprType, (text: string) => NonNullValue> = {
  int2: parseInt2,
  int4: parseInt4,
  int8: parseInt8,
  numeric: numericInputFunction(-1),
  float8: parseFloat8,
  bool: parseBool,
  text: (t) => t,
  jsonb: (t) => parseJsonb(t) as unknown as NonNullValue,
  timestamptz: parseTimestamptz,
  timestamp: parseTimestamp,
};

/** A jsonb column's documents, parsed once per row however often the expression reads them. */
function jsonbColumn(p: number): Evaluator {
  let lastBatch: RowBatch | undefined;
  let lastRow = -1;
  let last: Value = null;
  return (batch, r) => {
    if (batch !== lastBatch || r !== lastRow) {
      const text = batch.columns[p][r];
      last = text === null ? null : (parseJsonb(text as string) as unknown as Value);
      lastBatch = batch;
      lastRow = r;
    }
    return last;
  };
}

/** The engine value of a constant's text. */
export function constantValue(text: string | null, type: ExprType): Value {
  return text === null ? null : parsers[type](text);
}

/** Turns an expression into a closure over batch rows, with PostgreSQL's NULL rules. */
export function compile(expr: Expr): Evaluator {
  switch (expr.kind) {
    case 'column': {
      const p = expr.position;
      if (expr.type === 'jsonb') return jsonbColumn(p);
      if (expr.type === 'timestamptz' || expr.type === 'timestamp') {
        // Held as their text; read as microseconds.
        const parse = parsers[expr.type];
        return (batch, r) => {
          const text = batch.columns[p][r];
          return text === null ? null : parse(text as string);
        };
      }
      return (batch, r) => batch.columns[p][r];
    }
    case 'jsonbPath': {
      const arg = compile(expr.arg);
      const { path } = expr;
      const asText = expr.type === 'text';
      return (batch, r) => {
        const doc = arg(batch, r) as unknown as Jsonb | null;
        if (doc === null) return null;
        const found = jsonbPath(doc, path);
        return asText ? jsonbText(found) : (found as unknown as Value);
      };
    }
    case 'const': {
      const value = constantValue(expr.text, expr.type);
      return () => value;
    }
    case 'call':
      return compileCall(expr.fn, expr.args.map(compile));
    case 'cast': {
      const arg = compile(expr.arg);
      const cast = castFunction(expr.arg.type, expr.type, parsers);
      if (!cast) throw new Error(`no cast from ${expr.arg.type} to ${expr.type}`);
      return (batch, r) => {
        const v = arg(batch, r);
        return v === null ? null : cast(v);
      };
    }
    case 'and': {
      const args = expr.args.map(compile);
      return (batch, r) => {
        let sawNull = false;
        for (const arg of args) {
          const v = arg(batch, r);
          if (v === false) return false;
          if (v === null) sawNull = true;
        }
        return sawNull ? null : true;
      };
    }
    case 'or': {
      const args = expr.args.map(compile);
      return (batch, r) => {
        let sawNull = false;
        for (const arg of args) {
          const v = arg(batch, r);
          if (v === true) return true;
          if (v === null) sawNull = true;
        }
        return sawNull ? null : false;
      };
    }
    case 'not': {
      const arg = compile(expr.arg);
      return (batch, r) => {
        const v = arg(batch, r);
        return v === null ? null : !v;
      };
    }
    case 'isNull': {
      const arg = compile(expr.arg);
      const negated = expr.negated;
      return (batch, r) => (arg(batch, r) === null) !== negated;
    }
    case 'boolTest': {
      const arg = compile(expr.arg);
      const { test, negated } = expr;
      return (batch, r) => {
        const v = arg(batch, r);
        const holds = test === 'unknown' ? v === null : v === (test === 'true');
        return holds !== negated;
      };
    }
    case 'case': {
      const whens = expr.whens.map((w) => [compile(w.when), compile(w.then)] as const);
      const otherwise = expr.otherwise ? compile(expr.otherwise) : () => null;
      return (batch, r) => {
        for (const [when, then] of whens) if (when(batch, r) === true) return then(batch, r);
        return otherwise(batch, r);
      };
    }
    case 'coalesce': {
      const args = expr.args.map(compile);
      return (batch, r) => {
        for (const arg of args) {
          const v = arg(batch, r);
          if (v !== null) return v;
        }
        return null;
      };
    }
    case 'greatest':
    case 'least': {
      const args = expr.args.map(compile);
      const better = functions[`${comparisonPrefix(expr.type)}${expr.kind === 'greatest' ? 'gt' : 'lt'}`];
      // NULLs are ignored; the result is NULL only when every argument is.
      return (batch, r) => {
        let best: Value = null;
        for (const arg of args) {
          const v = arg(batch, r);
          if (v !== null && (best === null || better(v, best))) best = v;
        }
        return best;
      };
    }
    case 'in': {
      // As PostgreSQL rewrites it: the constant items (two or more) first, as one `= ANY (…)`, then the others in order.
      const constants = expr.items.filter((i) => i.kind === 'const');
      const ordered = constants.length >= 2 ? [...constants, ...expr.items.filter((i) => i.kind !== 'const')] : expr.items;
      const arg = compile(expr.arg);
      const items = ordered.map(compile);
      const eq = functions[expr.eq];
      const negated = expr.negated;
      return (batch, r) => {
        const v = arg(batch, r);
        let sawNull = false;
        for (const item of items) {
          const w = item(batch, r);
          if (v === null || w === null) sawNull = true;
          else if (eq(v, w)) return !negated;
        }
        return sawNull ? null : negated;
      };
    }
    case 'nullif': {
      const [a, c] = expr.args.map(compile);
      const eq = functions[expr.eq];
      return (batch, r) => {
        const v = a(batch, r);
        const w = c(batch, r);
        return v !== null && w !== null && eq(v, w) ? null : v;
      };
    }
    case 'distinct': {
      const [a, c] = expr.args.map(compile);
      const eq = functions[expr.eq];
      const negated = expr.negated;
      return (batch, r) => {
        const v = a(batch, r);
        const w = c(batch, r);
        const same = v === null || w === null ? v === w : eq(v, w) === true;
        return same === negated;
      };
    }
  }
}

/** The prefix of the comparison functions of a type (functions.ts). */
export function comparisonPrefix(type: ExprType): string {
  switch (type) {
    case 'int2':
    case 'int4':
    case 'timestamptz':
    case 'timestamp':
      return 'int';
    case 'int8':
      return 'int8';
    case 'numeric':
      return 'numeric';
    case 'float8':
      return 'float8';
    case 'bool':
      return 'bool';
    case 'text':
      return 'text';
    case 'jsonb':
      return 'jsonb';
  }
}

/** A strict call: every argument is evaluated (an error in one counts even when another is NULL), then NULL in, NULL out. */
function compileCall(fn: string, args: Evaluator[]): Evaluator {
  const f = functions[fn];
  if (!f) throw new Error(`no engine function ${fn}`);
  switch (args.length) {
    case 1: {
      const [a] = args;
      return (batch, r) => {
        const x = a(batch, r);
        return x === null ? null : f(x);
      };
    }
    case 2: {
      const [a, c] = args;
      return (batch, r) => {
        const x = a(batch, r);
        const y = c(batch, r);
        return x === null || y === null ? null : f(x, y);
      };
    }
    default:
      return (batch, r) => {
        const values = args.map((arg) => arg(batch, r));
        return values.includes(null) ? null : f(...(values as NonNullValue[]));
      };
  }
}
