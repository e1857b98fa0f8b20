/** Expressions the engine evaluates itself (the rest is SQL for the store). */
export type { Expr, ExprType } from './expr.ts';
export { compile, comparisonPrefix, constantValue, parsers, type Evaluator } from './evaluate.ts';
export { keyText, NeedsStore, outputText, posixRegExp } from './functions.ts';
export { jsonObject } from './json-output.ts';
export { fixedInterval, isDateTruncUnit, zoneFreeUnits } from './timestamp.ts';
