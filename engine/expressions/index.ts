/** Expressions the engine evaluates itself (the rest is SQL for the store). */
export type { CompiledParts, Expr, ExprType } from './expr.ts';
export { compile, comparisonPrefix, constantValue, type Evaluator } from './evaluate.ts';
export { castFunction, functions, NeedsStore, outputText, posixRegExp } from './functions.ts';
