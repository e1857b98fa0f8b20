/**
 * Expressions the engine evaluates itself, as the planner (sql/expression-
 * compiler.ts) hands them over and the catalog persists them (plain JSON):
 * PostgreSQL's operators and functions over the value types the engine
 * holds, already resolved to their argument and result types. Anything
 * else stays SQL, evaluated by the serving store.
 */

/** The types compiled expressions compute in (pg_type.typname). */
export type ExprType = 'int2' | 'int4' | 'int8' | 'numeric' | 'float8' | 'bool' | 'text' | 'jsonb' | 'timestamptz' | 'timestamp';

export type Expr =
  /** A stream column, by its position in the stream (its values already of `type`). */
  | { kind: 'column'; position: number; type: ExprType }
  /** A constant as PostgreSQL text of `type` (null: NULL). */
  | { kind: 'const'; text: string | null; type: ExprType }
  /** An operator or function resolved to one implementation (see functions.ts). */
  | { kind: 'call'; fn: string; args: Expr[]; type: ExprType }
  | { kind: 'cast'; arg: Expr; type: ExprType }
  | { kind: 'and' | 'or'; args: Expr[]; type: 'bool' }
  | { kind: 'not'; arg: Expr; type: 'bool' }
  /** IS [NOT] NULL. */
  | { kind: 'isNull'; arg: Expr; negated: boolean; type: 'bool' }
  /** IS [NOT] TRUE / FALSE / UNKNOWN. */
  | { kind: 'boolTest'; arg: Expr; test: 'true' | 'false' | 'unknown'; negated: boolean; type: 'bool' }
  /** CASE WHEN … THEN … ELSE … END (a simple CASE arrives as equality tests). */
  | { kind: 'case'; whens: { when: Expr; then: Expr }[]; otherwise: Expr | null; type: ExprType }
  | { kind: 'coalesce'; args: Expr[]; type: ExprType }
  | { kind: 'greatest' | 'least'; args: Expr[]; type: ExprType }
  /** x IN (…) / NOT IN, with `eq` the equality function of x's and the items' type. */
  | { kind: 'in'; arg: Expr; items: Expr[]; eq: string; negated: boolean; type: 'bool' }
  /** NULLIF(a, b) with `eq` the equality function. */
  | { kind: 'nullif'; args: [Expr, Expr]; eq: string; type: ExprType }
  /** jsonb `#>` / `#>>` with a constant path. */
  | { kind: 'jsonbPath'; arg: Expr; path: string[]; type: 'jsonb' | 'text' }
  /** a IS [NOT] DISTINCT FROM b. */
  | { kind: 'distinct'; args: [Expr, Expr]; eq: string; negated: boolean; type: 'bool' };
