import { aggregateImpl } from '../engine/aggregates.ts';
import { SqlError, SqlState } from '../engine/errors.ts';
import { qualifiedName, quoteIdent, quoteLiteral } from '../engine/sql-text.ts';
import { rolledBack, type StoreConnection } from '../engine/store.ts';
import { typeFirstValuesTuples } from './first-values.ts';
import { deltaAggregate, typedCombines } from './combine-delta.ts';
import { planUserAggregate } from './user-aggregates.ts';
import { compileExpression } from './expression-compiler.ts';
import type { Stream } from '../engine/stream.ts';
import { namedSketchAggregates, regressionAggregates, singleRowKey, type AggregateName, type AggregatePlan, type GroupPlan, type TypeRef, type ViewPlan } from '../engine/view-plan.ts';
import {
  columnRefParts, deparse, fieldsOf, functionName, isStar, nodeKind, sameExpression, stringValue, transform, walk,
  type AstFields, type AstNode,
} from './ast.ts';
import { reaggregateSql } from '../engine/reaggregate.ts';
import { finalFunctionName, outputStreamName, windowFunctionName } from '../engine/continuous-view.ts';
import { addGroupingSetKey, expandGroupBy, groupingFunctionSql, type GroupBy } from './grouping-sets.ts';
import { checkDistinct, distinctKind, distinctOnPlan, distinctOnTerms } from './distinct.ts';

/**
 * Turns `CREATE VIEW v AS SELECT … FROM stream …` into a ViewPlan and the DDL
 * of its `_mrel` table and reading view. PostgreSQL itself checks the query
 * and types every expression (by defining a throw-away view over the
 * stream's foreign table), so names, types and errors are PostgreSQL's own.
 */

export interface PlannerContext {
  conn: StoreConnection;
  /** Resolves a relation to a stream, or undefined when it is not one. */
  findStream(schema: string | undefined, name: string): Stream | undefined;
  /** Whether a function name is an aggregate in the serving store. */
  isAggregate(name: string): boolean;
  defaultSchema: string;
  /** The continuous view whose output stream this is (output_of), if it is one. */
  viewOfOutputStream?(stream: Stream): ViewPlan | undefined;
}

export interface PlannedView {
  plan: ViewPlan;
  /** DDL creating the `_mrel` table and the view over it. */
  ddl: string[];
}

const supportedAggregates = new Set<AggregateName>([
  ...regressionAggregates, 'regr_count',
  'percentile_cont', 'percentile_disc', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'bit_and', 'bit_or',
  'string_agg', 'array_agg', 'json_agg', 'jsonb_agg', 'json_object_agg', 'jsonb_object_agg', 'exact_count_distinct', 'var_samp', 'var_pop', 'variance', 'stddev', 'stddev_samp', 'stddev_pop',
  ...namedSketchAggregates, 'set_agg', 'keyed_max', 'keyed_min', 'first_values', 'combine',
]);

/** Aggregates of pairs (Y, X) or (key, value), whose second argument is evaluated per row like the first. */
const twoArgumentAggregates = new Set<string>([...regressionAggregates, 'regr_count', 'json_object_agg', 'jsonb_object_agg', 'keyed_max', 'keyed_min']);

interface TargetEntry {
  val: AstNode;
  name: string;
  type: TypeRef;
}

/** A sliding window asked for with `sw`/`sw_column`/`step_factor`. */
export interface WindowOption {
  interval: string;
  column?: string;
  stepFactor?: number;
}

export async function planContinuousView(
  ctx: PlannerContext,
  view: { schema?: string; name: string },
  select: AstFields,
  definition: string,
  windowOption?: WindowOption,
): Promise<PlannedView> {
  checkShape(select);
  select.fromClause = readOutputStreams(select.fromClause as AstNode[] | undefined, ctx);
  const window = windowOption ?? extractWindowPredicate(select);
  const { stream, range, plain } = sourceStream(ctx, select);
  const alias = sourceAlias(range);
  if (plain) unqualifyColumns(select, stream, alias);
  const probeFrom = plain ? `${qualifiedName(stream.schema, stream.name)} AS ${quoteIdent(alias)}` : deparse(select.fromClause);
  const ownedTypes = await typeFirstValuesTuples(ctx.conn, { schema: view.schema ?? ctx.defaultSchema, name: view.name }, [select.targetList, select.havingClause], probeFrom);
  // In a batch the stream is a CTE of the same name, which a schema-qualified reference would miss.
  const fromSql = plain ? undefined : deparse(transform(select.fromClause, (node, kind) => (kind === 'RangeVar' && node.RangeVar === range ? { RangeVar: { ...range, schemaname: undefined } } : undefined)));

  const targets = (select.targetList as AstNode[]).map((t) => fieldsOf(t, 'ResTarget') as AstFields);
  for (const t of targets) if (isStar(t.val)) throw starNotSupported();
  const aggregateCalls = collectAggregates(ctx, [...targets.map((t) => t.val as AstNode), ...(select.havingClause ? [select.havingClause as AstNode] : [])]);
  const distinct = distinctKind(select);
  if (distinct) checkDistinct(select, distinct, aggregateCalls.length, window !== undefined);
  // Without aggregates, GROUP BY or DISTINCT, a continuous view keeps every row it selects (append-only).
  const appendOnly = aggregateCalls.length === 0 && !select.groupClause && !distinct;
  // PipelineDB keeps every row of such a view and applies its LIMIT/OFFSET when the view is read.
  const readLimit = limitWhenRead(select, appendOnly);
  // GROUP BY, with its grouping sets; SELECT DISTINCT groups by the selected expressions, DISTINCT ON by its keys.
  const groupBy: GroupBy | undefined = appendOnly || distinct ? undefined : expandGroupBy(select, (item) => resolveGroupItem(item, targets, stream));
  const distinctOnTermsOf = distinct === 'on' ? distinctOnTerms(select, targets) : undefined;
  const groupExprs =
    groupBy?.exprs ?? distinctOnTermsOf?.keys ?? targets.map((t) => t.val as AstNode).filter((v, i, all) => all.findIndex((w) => sameExpression(v, w)) === i);
  const orderExprs = distinctOnTermsOf?.order.map((o) => o.expr) ?? [];
  if (!appendOnly && groupExprs.length === 0 && aggregateCalls.length === 0) throw notSupported('GROUP BY () without aggregates', 'Select an aggregate, e.g. count(*).');

  const upstream = ctx.viewOfOutputStream?.(stream);
  // combine((delta).col) is typed as what it finishes to (no store function could take every state type).
  const types = await typeQuery(ctx.conn, typedCombines(select, upstream), probeFrom, [...groupExprs, ...orderExprs], aggregateCalls);
  const entries: TargetEntry[] = targets.map((t, i) => ({ val: t.val as AstNode, ...types.outputs[i] }));

  const used = new Set<string>();
  const unique = (name: string): string => {
    let candidate = name;
    for (let n = 1; used.has(candidate); n++) candidate = `${name}_${n}`;
    used.add(candidate);
    return candidate;
  };
  const groups: GroupPlan[] = groupExprs.map((expr, i) => {
    const named = entries.find((e) => sameExpression(e.val, expr));
    const parts = columnRefParts(expr);
    return {
      column: unique(named?.name ?? `_group${i + 1}`),
      sql: deparse(expr),
      ...types.groups[i],
      sourceColumn: parts?.length === 1 && stream.position(parts[0]) !== undefined ? parts[0] : undefined,
    };
  });
  const aggregates: AggregatePlan[] = [];
  for (const [i, call] of aggregateCalls.entries()) {
    const fields = fieldsOf(call, 'FuncCall') as AstFields;
    const fn = functionName(fields) as AggregateName;
    const star = fields.agg_star === true;
    const arg = aggregateArgument(fields);
    const parts = arg ? columnRefParts(arg) : undefined;
    const named = entries.find((e) => sameExpression(e.val, call));
    const column = unique(named?.name ?? `_${fn}${i + 1}`);
    const sketch = await sketchOf(ctx.conn, fn, fields);
    const hypothetical = await hypotheticalOf(ctx.conn, fn, fields, probeFrom);
    // Any other aggregate (user-defined, or one of PostgreSQL's) works when it has a combine function.
    const userDefined = supportedAggregates.has(fn) ? undefined : await planUserAggregate(ctx.conn, deparse(call), probeFrom, types.arguments[i]);
    aggregates.push({
      fn,
      ...(fn === 'combine' ? { combines: deltaAggregate(fields, upstream) } : {}),
      star,
      column,
      argSql: arg ? deparse(arg) : undefined,
      ...(userDefined ? { userDefined, moreArgsSql: ((fields.args as AstNode[] | undefined) ?? []).slice(1).map((a) => deparse(a)) } : {}),
      extraArgs:
        userDefined ? undefined
        : fn === 'first_values'
          ? [await firstValuesCount(ctx.conn, fields)]
          : sketch || hypothetical || twoArgumentAggregates.has(fn)
            ? undefined
            : ((fields.args as AstNode[] | undefined) ?? []).slice(1).map(constantArgument),
      secondArgSql: twoArgumentAggregates.has(fn) ? deparse(((fields.args as AstNode[])[1])) : undefined,
      filter: fields.agg_filter ? deparse(fields.agg_filter) : undefined,
      distinct: fields.agg_distinct === true && !sketch ? true : undefined,
      arg: star ? undefined : types.arguments[i],
      ...(fn === 'keyed_max' || fn === 'keyed_min' ? { secondArg: types.secondArguments[i] } : {}),
      sourceColumn: parts?.length === 1 && stream.position(parts[0]) !== undefined ? parts[0] : undefined,
      // A named sketch aggregate's column is its state.
      ...(sketch ? { sketch, stateColumn: sketch.named ? column : unique(`_${column}_sketch`) } : {}),
      ...(hypothetical ? { hypothetical } : {}),
    });
  }
  await checkDistinctArguments(ctx.conn, aggregates);
  // Expressions the engine can evaluate itself (the store evaluates the rest, and everything of other shapes).
  // SLUICE_COMPILE_EXPRESSIONS=off leaves every expression to the store (to compare, or to rule the compiled path out).
  const compilable = plain && !window && !groupBy?.sets && !distinct && !appendOnly && process.env.SLUICE_COMPILE_EXPRESSIONS !== 'off';
  if (compilable) {
    for (const [i, g] of groups.entries()) if (!g.sourceColumn) g.compiled = compileExpression(groupExprs[i], stream, g.typeName);
    for (const [i, a] of aggregates.entries()) {
      const fields = fieldsOf(aggregateCalls[i], 'FuncCall') as AstFields;
      const arg = aggregateArgument(fields);
      if (arg && !a.sourceColumn && a.arg && !a.sketch && !a.userDefined) a.compiledArg = compileExpression(arg, stream, a.arg.typeName);
      if (fields.agg_filter) a.compiledFilter = compileExpression(fields.agg_filter, stream, 'bool');
    }
  }
  const impls = aggregates.map(aggregateImpl);
  const groupingSets = groupBy?.sets ? addGroupingSetKey(groups, groupBy.sets, unique('_grouping_set')) : undefined;
  const distinctOn = distinctOnTermsOf ? distinctOnPlan(distinctOnTermsOf, entries, types.groups.slice(groupExprs.length), unique) : undefined;
  const slidingWindow = window ? await windowOf(ctx.conn, window, stream) : undefined;
  if (slidingWindow) {
    // Named as in PipelineDB's _mrel, so `WHERE arrival_timestamp > clock_timestamp() - interval '…'` over it reads a shorter window.
    const bucket = unique('arrival_timestamp');
    groups.push({
      column: bucket,
      sql: `date_bin('${slidingWindow.step}'::interval, ${quoteIdent(slidingWindow.column)}, timestamptz '2000-01-01 00:00:00+00')`,
      type: 'timestamp with time zone',
      typeName: 'timestamptz',
    });
    slidingWindow.bucket = bucket;
  }

  const schema = view.schema ?? ctx.defaultSchema;
  const plan: ViewPlan = {
    schema,
    name: view.name,
    mrel: `${view.name}_mrel`,
    stream: { schema: stream.schema, name: stream.name, alias },
    columns: plain ? referencedColumns(select, stream) : stream.columns.map((c) => c.name),
    from: fromSql,
    where: select.whereClause ? deparse(select.whereClause) : undefined,
    ...(compilable && select.whereClause ? { compiledWhere: compileExpression(select.whereClause, stream, 'bool') } : {}),
    groups,
    aggregates,
    ...(ownedTypes.length ? { ownedTypes } : {}),
    ...(groupingSets ? { groupingSets } : {}),
    ...(distinctOn ? { distinctOn: distinctOn.plan } : {}),
    definition,
  };

  const mrel = qualifiedName(schema, plan.mrel);
  const columnDefs = [
    ...groups.map((g) => `${quoteIdent(g.column)} ${g.type}`),
    ...aggregates.flatMap((a, i) => [
      `${quoteIdent(a.column)} ${impls[i].stateType}`,
      ...(a.stateColumn && a.stateColumn !== a.column ? [`${quoteIdent(a.stateColumn)} bytea`] : []),
    ]),
    ...(distinctOn ? [...distinctOn.plan.order, ...distinctOn.plan.values].map((c) => `${quoteIdent(c.column)} ${c.type}`) : []),
  ];
  /** An aggregate's state column, merged across a window's buckets when the view has one. */
  const stateOf = (a: number): string => {
    const column = quoteIdent(aggregates[a].column);
    if (!slidingWindow) return column;
    const merged = reaggregateSql(aggregates[a], impls[a].stateType, column, quoteIdent(slidingWindow.bucket));
    if (!merged) throw notSupported(`${aggregates[a].fn} in a sliding-window view`);
    return merged;
  };
  /**
   * An expression of the query rewritten over the `_mrel`: aggregates
   * finalized, grouping keys read from their columns. Aggregates go in as
   * placeholders replaced after deparsing, so their SQL is used verbatim.
   */
  /** GROUPING(…) calls met by overMrel, as SQL over the `_mrel`. */
  const groupingCalls: string[] = [];
  const overMrel = (expr: unknown): string => {
    const sql = deparse(
      transform(expr, (node) => {
        const a = aggregateCalls.findIndex((call) => sameExpression(call, node));
        if (a >= 0) return { ColumnRef: { fields: [{ String: { sval: `sluice_aggregate_${a}` } }] } };
        const g = groupExprs.findIndex((e) => sameExpression(e, node));
        if (g >= 0) return { ColumnRef: { fields: [{ String: { sval: groups[g].column } }] } };
        const v = distinctOn?.values.findIndex((value) => sameExpression(value.expr, node)) ?? -1;
        if (v >= 0) return { ColumnRef: { fields: [{ String: { sval: (distinctOn?.values[v].column as string) } }] } };
        if (nodeKind(node) === 'GroupingFunc') {
          groupingCalls.push(groupingFunctionSql(node.GroupingFunc as AstFields, groupBy ?? { exprs: groupExprs }, groupingSets && quoteIdent(groupingSets.column)));
          return { ColumnRef: { fields: [{ String: { sval: `sluice_grouping_${groupingCalls.length - 1}` } }] } };
        }
        return undefined;
      }),
    );
    return sql
      .replace(/\bsluice_aggregate_(\d+)\b/g, (_, a: string) => `(${impls[Number(a)].finalSql(stateOf(Number(a)))})`)
      .replace(/\bsluice_grouping_(\d+)\b/g, (_, c: string) => `(${groupingCalls[Number(c)]})`);
  };
  const expressions = entries.map((entry) => `(${overMrel(entry.val)})::${entry.type.type}`);
  // The view's columns that are its grouping keys: what identifies a group in its change feed.
  plan.keyColumns = entries.filter((entry) => groupExprs.some((e) => sameExpression(e, entry.val))).map((entry) => entry.name);
  const outputs = entries.map((entry, i) => `${expressions[i]} AS ${quoteIdent(entry.name)}`);
  // HAVING filters groups when the view is read, so a group reappears as soon as it qualifies.
  // A sliding window merges, when read, the buckets that still overlap the window.
  let reading = select.havingClause ? ` WHERE ${overMrel(select.havingClause)}` : '';
  if (slidingWindow) {
    const userGroups = groups.filter((g) => g.column !== slidingWindow.bucket).map((g) => quoteIdent(g.column));
    reading =
      ` WHERE ${quoteIdent(slidingWindow.bucket)} + '${slidingWindow.step}'::interval > sluice.now() - '${slidingWindow.interval}'::interval` +
      (userGroups.length ? ` GROUP BY ${userGroups.join(', ')}` : '') +
      (select.havingClause ? ` HAVING ${overMrel(select.havingClause)}` : '');
    plan.window = { interval: slidingWindow.interval, step: slidingWindow.step, column: slidingWindow.column };
    const windowColumn = slidingWindow.column;
    if (!plan.columns.includes(windowColumn)) plan.columns = stream.columns.map((c) => c.name).filter((n) => n === windowColumn || plan.columns.includes(n));
    // The reaper drops buckets once they have left the window entirely.
    plan.ttl = { interval: slidingWindow.retention, column: slidingWindow.bucket };
  }
  const viewName = qualifiedName(schema, view.name);
  // A view that can be finalized row by row also gets an output stream (output_of('v')): its changes.
  // A grouped view's changes also carry their delta (the batch's partial states, an _mrel row), which views over it can combine().
  const withDelta = !slidingWindow && !appendOnly && !distinctOn && !aggregates.some((a) => a.sketch);
  if (withDelta) plan.outputDelta = true;
  const outputStreamTable =
    `CREATE FOREIGN TABLE ${qualifiedName(schema, outputStreamName(view.name))} ("old" ${viewName}, "new" ${viewName}, ${withDelta ? `delta ${mrel}, ` : ''}arrival_timestamp timestamptz) ` +
    `SERVER pipelinedb OPTIONS (output_of ${quoteLiteral(`${schema}.${view.name}`)})`;
  let outputStream: string[] = [];
  if (slidingWindow && !aggregates.some((a) => a.sketch)) {
    // A window's rows at an instant, keyed by group: comparing two instants gives the changes.
    const keys = groups.filter((g) => g.column !== slidingWindow.bucket).map((g) => quoteIdent(g.column));
    const windowAt = reading.replace('sluice.now()', 'at');
    outputStream = [
      `CREATE FUNCTION ${qualifiedName(schema, windowFunctionName(view.name))}(at timestamptz) RETURNS TABLE (key text, "row" ${viewName}) LANGUAGE sql STABLE AS $sluice$ SELECT ROW(${keys.join(', ')})::text, ROW(${expressions.join(', ')})::${viewName} FROM ${mrel}${windowAt} $sluice$`,
      outputStreamTable,
    ];
  } else if (!aggregates.some((a) => a.sketch)) {
    outputStream = [
      `CREATE FUNCTION ${qualifiedName(schema, finalFunctionName(view.name))}(m ${mrel}) RETURNS ${viewName} LANGUAGE sql STABLE AS $sluice$ SELECT ${outputs.join(', ')} FROM (SELECT (m).*) AS mrel${reading} $sluice$`,
      outputStreamTable,
    ];
  }
  if (appendOnly) plan.appendOnly = true;
  const ddl = [
    ...new Set(aggregates.flatMap((a) => a.userDefined?.ddl ?? [])),
    `CREATE TABLE ${mrel} (${columnDefs.join(', ')})`,
    ...(appendOnly
      ? []
      : [
          groups.length
            ? `CREATE UNIQUE INDEX ON ${mrel} (${groups.map((g) => quoteIdent(g.column)).join(', ')}) NULLS NOT DISTINCT`
            : `CREATE UNIQUE INDEX ON ${mrel} (${singleRowKey})`,
        ]),
    `CREATE VIEW ${viewName} AS SELECT ${outputs.join(', ')} FROM ${mrel}${reading}${readLimit}`,
    ...outputStream,
  ];
  return { plan, ddl };
}

/**
 * PipelineDB's other spelling of a sliding window: a top-level WHERE term
 * `arrival_timestamp > clock_timestamp() - interval 'X'`, taken out of WHERE.
 */
function extractWindowPredicate(select: AstFields): WindowOption | undefined {
  const where = select.whereClause as AstNode | undefined;
  if (!where) return undefined;
  const terms: AstNode[] = fieldsOf(where, 'BoolExpr')?.boolop === 'AND_EXPR' ? ((where.BoolExpr as AstFields).args as AstNode[]) : [where];
  const index = terms.findIndex(isWindowTerm);
  if (index < 0) return undefined;
  const rest = terms.filter((_, i) => i !== index);
  const term = fieldsOf(terms[index], 'A_Expr') as AstFields;
  const minus = fieldsOf(term.rexpr, 'A_Expr') as AstFields;
  select.whereClause = rest.length === 0 ? undefined : rest.length === 1 ? rest[0] : { BoolExpr: { boolop: 'AND_EXPR', args: rest } };
  return { interval: `(${deparse(minus.rexpr)})::text`, column: (columnRefParts(term.lexpr) as string[]).at(-1) };
}

function isWindowTerm(node: AstNode): boolean {
  const term = fieldsOf(node, 'A_Expr');
  if (!term || term.kind !== 'AEXPR_OP' || stringValue((term.name as unknown[])[0]) !== '>') return false;
  const parts = columnRefParts(term.lexpr);
  const minus = fieldsOf(term.rexpr, 'A_Expr');
  if (!parts || !minus || stringValue((minus.name as unknown[])[0]) !== '-') return false;
  const clock = fieldsOf(minus.lexpr, 'FuncCall');
  return !!clock && ['clock_timestamp', 'now'].includes(functionName(clock));
}

/**
 * The window's step: window × step_factor / 100 (default 5), at least one
 * second — rows are aggregated into buckets of that width (date_bin from
 * 2000-01-01, PipelineDB's date_round).
 */
async function windowOf(conn: StoreConnection, option: WindowOption, stream: Stream): Promise<{ interval: string; step: string; retention: string; column: string; bucket: string }> {
  const column = option.column ?? 'arrival_timestamp';
  const type = stream.columns[stream.position(column) ?? -1]?.typeName;
  if (type !== 'timestamptz' && type !== 'timestamp') {
    throw new SqlError(SqlState.invalidParameterValue, `sw_column "${column}" must be a timestamp column of stream "${stream.name}"`);
  }
  const factor = option.stepFactor ?? 5;
  if (!(factor > 0 && factor <= 50)) throw new SqlError(SqlState.invalidParameterValue, `step_factor must be in (0, 50], not ${factor}`);
  const interval = option.interval.startsWith('(') ? (await conn.query(`SELECT ${option.interval}`)).rows[0][0] as string : option.interval;
  const result = await conn.query(
    "SELECT $1::interval::text, s::text, ($1::interval + s)::text FROM (SELECT greatest($1::interval * $2::float8 / 100, interval '1 second') AS s) AS step",
    [interval, String(factor)],
  );
  const [window, step, retention] = result.rows[0] as string[];
  return { interval: window, step, retention, column, bucket: '' };
}

/** `FROM output_of('v')` reads the output stream of view v, the stream `v_osrel`. */
export function readOutputStreams(from: AstNode[] | undefined, ctx: Pick<PlannerContext, 'findStream'>): AstNode[] | undefined {
  if (!from) return from;
  return transform(from, (node, kind) => {
    if (kind !== 'RangeFunction') return undefined;
    const range = node.RangeFunction as AstFields;
    const first = fieldsOf((range.functions as AstNode[] | undefined)?.[0], 'List')?.items as AstNode[] | undefined;
    const call = fieldsOf(first?.[0], 'FuncCall');
    if (!call || functionName(call) !== 'output_of') return undefined;
    const arg = fieldsOf(((call.args as AstNode[] | undefined) ?? [])[0], 'A_Const');
    const target = (arg?.sval as { sval?: string } | undefined)?.sval;
    if (!target) throw notSupported('output_of with anything but a view name in quotes');
    const dot = target.indexOf('.');
    const relname = outputStreamName(dot > 0 ? target.slice(dot + 1) : target);
    if (!ctx.findStream(dot > 0 ? target.slice(0, dot) : undefined, relname)) {
      throw new SqlError(SqlState.featureNotSupported, `output_of('${target}'): "${target}" has no output stream`, {
        hint: 'Continuous views and transforms have one, except views keeping sketches (count(DISTINCT), percentile_cont, percentile_disc, topk_agg, hll_agg, freq_agg, bloom_agg, dist_agg).',
      });
    }
    return { RangeVar: { ...(dot > 0 ? { schemaname: target.slice(0, dot) } : {}), relname, inh: true, relpersistence: 'p', ...(range.alias ? { alias: range.alias } : {}) } };
  }) as AstNode[];
}

export function notSupported(what: string, hint?: string): SqlError {
  return new SqlError(SqlState.featureNotSupported, `${what} is not supported in a continuous view`, { hint });
}

function starNotSupported(): SqlError {
  return notSupported('* in the target list', 'List the columns and aggregates the view should keep.');
}

/** Rejects what a continuous view cannot (yet) compute, naming the construct. */
/** ` LIMIT n OFFSET m` for reading a view that keeps every row (taken out of the query); refused elsewhere. */
function limitWhenRead(select: AstFields, appendOnly: boolean): string {
  if (!select.limitCount && !select.limitOffset) return '';
  if (!appendOnly) throw notSupported('LIMIT/OFFSET with aggregates', 'A view without aggregates keeps every row and limits when read; with aggregates, limit when you read the view.');
  const limit = `${select.limitCount ? ` LIMIT ${deparse(select.limitCount)}` : ''}${select.limitOffset ? ` OFFSET ${deparse(select.limitOffset)}` : ''}`;
  select.limitCount = undefined;
  select.limitOffset = undefined;
  select.limitOption = 'LIMIT_OPTION_DEFAULT';
  return limit;
}

function checkShape(select: AstFields): void {
  if (select.op && select.op !== 'SETOP_NONE') throw notSupported('UNION, INTERSECT or EXCEPT');
  if (select.withClause) throw notSupported('WITH (a common table expression)');
  // ORDER BY picks the row a DISTINCT ON view keeps per key; otherwise it is for reading.
  if (select.sortClause && distinctKind(select) !== 'on') throw notSupported('ORDER BY', 'Sort when you read the view: SELECT * FROM v ORDER BY …');
  if (select.windowClause) throw notSupported('WINDOW');
  if (select.valuesLists) throw notSupported('VALUES');
  if (select.intoClause) throw notSupported('SELECT INTO');
  walk(select.targetList, (node, kind) => {
    if (kind === 'FuncCall' && (node.FuncCall as AstFields).over) throw notSupported('a window function');
    if (kind === 'SubLink') throw notSupported('a sub-select in the target list');
  });
  walk(select.whereClause, (node, kind) => {
    if (kind === 'SubLink') throw notSupported('a sub-select in WHERE');
  });
}

/**
 * The stream a view reads. FROM may be the stream alone, or joins and
 * sub-selects in which the stream appears exactly once beside ordinary
 * tables (enrichment): those run in the store for each batch.
 */
export function sourceStream(ctx: PlannerContext, select: AstFields): { stream: Stream; range: AstFields; plain: boolean } {
  const from = (select.fromClause as AstNode[] | undefined) ?? [];
  if (from.length === 0) throw notSupported('a view without FROM');
  const found: { stream: Stream; range: AstFields }[] = [];
  walk(from, (node, kind) => {
    if (kind === 'RangeFunction') throw notSupported('a function in FROM (output_of comes with output streams)');
    if (kind !== 'RangeVar') return;
    const range = node.RangeVar as AstFields;
    const stream = ctx.findStream(range.schemaname as string | undefined, range.relname as string);
    if (stream) found.push({ stream, range });
  });
  if (found.length === 0) throw notSupported('a view that reads no stream');
  if (found.length > 1) throw notSupported('reading more than one stream in a view', 'Create a view per stream, or merge the streams with a transform.');
  const plain = from.length === 1 && nodeKind(from[0]) === 'RangeVar';
  return { ...found[0], plain };
}

export function sourceAlias(range: AstFields): string {
  const alias = range.alias as { aliasname?: string } | undefined;
  return alias?.aliasname ?? (range.relname as string);
}

/**
 * Drops `stream.` / `schema.stream.` / `alias.` qualifiers from column
 * references, so the same expressions can run over a batch (`unnest(…) AS alias(cols)`).
 */
export function unqualifyColumns(select: AstFields, stream: Stream, alias: string): void {
  walk(select, (node, kind) => {
    if (kind !== 'ColumnRef') return;
    const ref = node.ColumnRef as AstFields;
    const parts = columnRefParts(node);
    if (!parts || parts.length < 2) return;
    const column = parts[parts.length - 1];
    const relation = parts[parts.length - 2];
    const schema = parts.length > 2 ? parts[parts.length - 3] : undefined;
    const matches = (relation === alias || relation === stream.name) && (schema === undefined || schema === stream.schema);
    if (matches && stream.position(column) !== undefined) ref.fields = [{ String: { sval: column } }];
  });
}

/** The per-row argument of an aggregate: the first argument (first_values: the second), or the ORDER BY of an ordered-set aggregate. */
function aggregateArgument(call: AstFields): AstNode | undefined {
  if (call.agg_star) return undefined;
  if (functionName(call) === 'first_values') return ((call.args as AstNode[] | undefined) ?? [])[1];
  if (call.agg_within_group) return fieldsOf((call.agg_order as AstNode[])[0], 'SortBy')?.node as AstNode;
  return ((call.args as AstNode[] | undefined) ?? [])[0];
}

/** Ordered-set and hypothetical-set aggregates a continuous view computes (`… WITHIN GROUP (ORDER BY x)`). */
const withinGroupAggregates = new Set<string>(['percentile_cont', 'percentile_disc', 'rank', 'dense_rank', 'percent_rank', 'cume_dist']);
const hypotheticalAggregates = new Set<string>(['rank', 'dense_rank', 'percent_rank', 'cume_dist']);

/**
 * PipelineDB's named sketch aggregates: the sketch kept, and which arguments
 * after the first are per-row (the others are constants: k, p, eps, …).
 */
const namedSketches: Record<string, { kind: NonNullable<AggregatePlan['sketch']>['kind']; rowArgs: number[] }> = {
  topk_agg: { kind: 'topk', rowArgs: [2] },
  hll_agg: { kind: 'hll', rowArgs: [] },
  freq_agg: { kind: 'cms', rowArgs: [] },
  bloom_agg: { kind: 'bloom', rowArgs: [] },
  dist_agg: { kind: 'tdigest', rowArgs: [] },
  bucket_agg: { kind: 'bucket', rowArgs: [1, 2] },
};

/**
 * PipelineDB's sketch rewrites: count(DISTINCT x) keeps a HyperLogLog,
 * percentile_cont(q) and percentile_disc(q) WITHIN GROUP (ORDER BY x) a
 * t-digest; q is a constant (or an array of them), evaluated once here.
 */
async function sketchOf(conn: StoreConnection, fn: string, call: AstFields): Promise<AggregatePlan['sketch']> {
  if (fn === 'count' && call.agg_distinct) return { kind: 'hll' };
  const named = namedSketches[fn];
  if (named) {
    const args = (call.args as AstNode[] | undefined) ?? [];
    const params: (number | null)[] = [];
    for (const [i, node] of args.entries()) {
      if (i === 0 || named.rowArgs.includes(i)) continue;
      checkConstantArgument(fn, node);
      const value = (await conn.query(`SELECT (${deparse(node)})::float8::text`)).rows[0][0];
      params.push(value === null ? null : Number(value));
    }
    // bucket_agg's timestamp goes to the engine as seconds since the epoch.
    const rowArgs = named.rowArgs.filter((i) => i < args.length).map((i) => (fn === 'bucket_agg' && i === 2 ? `extract(epoch FROM (${deparse(args[i])}))` : deparse(args[i])));
    return { kind: named.kind, named: true, params, ...(rowArgs.length ? { rowArgs } : {}) };
  }
  if (fn !== 'percentile_cont' && fn !== 'percentile_disc') return undefined;
  const direct = ((call.args as AstNode[] | undefined) ?? [])[0];
  checkConstantArgument(fn, direct);
  const { descending } = withinGroupOrder(fn, call);
  const fraction = deparse(direct);
  const kind = await conn.query(`SELECT pg_typeof(${fraction})::text`);
  const array = kind.rows[0][0]?.endsWith('[]') === true;
  const values = await conn.query(array ? `SELECT unnest((${fraction})::float8[])::text` : `SELECT (${fraction})::float8::text`);
  return { kind: 'tdigest', array, fractions: values.rows.map(([v]) => (v === null ? null : Number(v))), ...(descending ? { descending } : {}) };
}

/** The direction and NULL placement of a WITHIN GROUP (ORDER BY x …), with PostgreSQL's defaults. */
function withinGroupOrder(fn: string, call: AstFields): { descending: boolean; nullsFirst: boolean } {
  const order = (call.agg_order as AstNode[] | undefined) ?? [];
  if (order.length !== 1) throw notSupported(`${fn}(…) WITHIN GROUP over more than one ORDER BY expression`, `Order by a single expression: ${fn}(v) WITHIN GROUP (ORDER BY x).`);
  return sortOrder(fn, order[0]);
}

function sortOrder(fn: string, node: AstNode): { descending: boolean; nullsFirst: boolean } {
  const sortBy = fieldsOf(node, 'SortBy') as AstFields;
  if (sortBy.sortby_dir === 'SORTBY_USING') throw notSupported(`${fn}(…) WITHIN GROUP (ORDER BY … USING …)`, 'Use ASC or DESC.');
  const descending = sortBy.sortby_dir === 'SORTBY_DESC';
  const nulls = sortBy.sortby_nulls;
  return { descending, nullsFirst: nulls === 'SORTBY_NULLS_FIRST' || (nulls !== 'SORTBY_NULLS_LAST' && descending) };
}

/** A direct argument of an ordered-set aggregate must be one value for every row: no columns, sub-selects or parameters. */
function checkConstantArgument(fn: string, node: AstNode | undefined): void {
  walk(node, (_, kind) => {
    if (kind === 'ColumnRef' || kind === 'SubLink' || kind === 'ParamRef') {
      throw notSupported(`${fn}(…) with an argument that is not a constant`, `Give ${fn} a constant: a literal or an expression without columns (evaluated once, when the view is created).`);
    }
  });
}

/**
 * Hypothetical-set aggregates rank/dense_rank/percent_rank/cume_dist(v1, …)
 * WITHIN GROUP (ORDER BY x1, …): each v is a constant, evaluated once here in
 * the type PostgreSQL compares it and its x in (their common type, as CASE
 * resolves it: the same rule).
 */
async function hypotheticalOf(conn: StoreConnection, fn: string, call: AstFields, from: string): Promise<AggregatePlan['hypothetical']> {
  if (!hypotheticalAggregates.has(fn)) return undefined;
  const args = (call.args as AstNode[] | undefined) ?? [];
  const order = (call.agg_order as AstNode[] | undefined) ?? [];
  if (args.length !== order.length) {
    throw new SqlError(SqlState.undefinedFunction, `${fn} takes as many values as WITHIN GROUP has ORDER BY expressions: ${args.length} and ${order.length} given`, {
      hint: `Rank one value per sort expression: ${fn}(v1, v2) WITHIN GROUP (ORDER BY x1, x2).`,
    });
  }
  for (const a of args) checkConstantArgument(fn, a);
  const sorts = order.map((o) => fieldsOf(o, 'SortBy')?.node as AstNode);
  const types = await rolledBack(conn, async () => {
    const commonTypes = sorts.map((x, i) => `CASE WHEN false THEN (${deparse(args[i])}) ELSE (${deparse(x)}) END AS h${i}`);
    await probe(conn, `CREATE TEMP VIEW sluice_probe_hypothetical AS SELECT ${commonTypes.join(', ')} FROM ${from}`);
    return (await columnTypes(conn, 'sluice_probe_hypothetical')).map((c) => c.type.type);
  });
  const columns = [];
  for (const [i, x] of sorts.entries()) {
    const value = (await conn.query(`SELECT ((${deparse(args[i])})::${types[i]})::text`)).rows[0][0];
    columns.push({ value: value === null ? 'NULL' : `${quoteLiteral(value)}::${types[i]}`, type: types[i], ...sortOrder(fn, order[i]), sql: deparse(x) });
  }
  const [first, ...more] = columns;
  const { sql: _firstSql, ...head } = first;
  return { ...head, ...(more.length ? { more } : {}) };
}

/**
 * exact_count_distinct keeps its values sorted, so like count(DISTINCT x) it
 * needs an argument PostgreSQL can compare: the probe, a call of a
 * polymorphic aggregate, does not check that.
 */
async function checkDistinctArguments(conn: StoreConnection, aggregates: AggregatePlan[]): Promise<void> {
  for (const a of aggregates) {
    if (a.fn === 'exact_count_distinct' && a.arg) await probe(conn, `SELECT count(DISTINCT x) FROM (SELECT NULL::${a.arg.type}) AS t(x)`);
  }
}

/** first_values(n, v): n, a constant positive integer (several values are one tuple by now: see typeFirstValuesTuples). */
async function firstValuesCount(conn: StoreConnection, call: AstFields): Promise<string> {
  const args = (call.args as AstNode[] | undefined) ?? [];
  if (args.length !== 2) throw new SqlError(SqlState.undefinedFunction, 'first_values takes n and at least one value: first_values(n, v[, v2, …])');
  checkConstantArgument('first_values', args[0]);
  const n = (await conn.query(`SELECT (${deparse(args[0])})::int::text`)).rows[0][0];
  if (n === null || Number(n) < 1) throw new SqlError(SqlState.invalidParameterValue, 'first_values: n must be a positive integer');
  return n;
}

/** string_agg's delimiter and the like: constants, since one value serves every merge. */
function constantArgument(node: AstNode): string {
  const kind = nodeKind(node);
  const inner = kind === 'TypeCast' ? ((node.TypeCast as AstFields).arg as AstNode) : node;
  if (nodeKind(inner) !== 'A_Const') throw notSupported('an aggregate argument after the first that is not a constant');
  return deparse(node);
}

export function collectAggregates(ctx: PlannerContext, exprs: AstNode[]): AstNode[] {
  const calls: AstNode[] = [];
  walk(exprs, (node, kind) => {
    if (kind !== 'FuncCall') return;
    const call = node.FuncCall as AstFields;
    const name = functionName(call);
    if (!ctx.isAggregate(name) && name !== 'combine') return;
    if (call.agg_distinct && name !== 'count' && name !== 'array_agg') throw notSupported(`${name}(DISTINCT …)`);
    if (call.agg_within_group && !withinGroupAggregates.has(name)) throw notSupported(`${name}(…) WITHIN GROUP`);
    if (call.agg_order && !call.agg_within_group) throw notSupported('ORDER BY inside an aggregate');
    if (!calls.some((c) => sameExpression(c, node))) calls.push(node);
    return false;
  });
  return calls;
}

/** A GROUP BY item as an expression: an ordinal or an output name (not an input column's) resolved as PostgreSQL does. */
function resolveGroupItem(item: AstNode, targets: AstFields[], stream: Stream): AstNode {
  const constant = fieldsOf(item, 'A_Const');
  const parts = columnRefParts(item);
  if (constant && constant.ival) {
    const ordinal = ((constant.ival as { ival?: number }).ival ?? 0) - 1;
    if (ordinal < 0 || ordinal >= targets.length) {
      throw new SqlError(SqlState.invalidColumnReference, `GROUP BY position ${ordinal + 1} is not in select list`);
    }
    return targets[ordinal].val as AstNode;
  }
  if (parts?.length === 1 && stream.position(parts[0]) === undefined) {
    const target = targets.find((t) => t.name === parts[0]);
    if (target) return target.val as AstNode;
  }
  return item;
}

export function referencedColumns(select: AstFields, stream: Stream): string[] {
  const names = new Set<string>();
  walk(select, (node, kind) => {
    if (kind !== 'ColumnRef') return;
    const parts = columnRefParts(node);
    if (parts?.length === 1 && stream.position(parts[0]) !== undefined) names.add(parts[0]);
  });
  return stream.columns.map((c) => c.name).filter((n) => names.has(n));
}

interface QueryTypes {
  outputs: { name: string; type: TypeRef }[];
  groups: TypeRef[];
  arguments: TypeRef[];
  /** The second argument of keyed_max/keyed_min (int4 for the others). */
  secondArguments: TypeRef[];
}

/**
 * Asks PostgreSQL for the names and types of the view's columns, grouping
 * keys and aggregate arguments, by defining (and rolling back) views over the
 * stream's foreign table. Any error in the query surfaces here, as PostgreSQL reports it.
 */
export async function typeQuery(
  conn: StoreConnection,
  select: AstFields,
  from: string,
  groupExprs: AstNode[],
  aggregateCalls: AstNode[],
): Promise<QueryTypes> {
  const probes = [
    ...groupExprs.map((e, i) => `${deparse(e)} AS g${i}`),
    ...aggregateCalls.map((call, i) => {
      const fields = fieldsOf(call, 'FuncCall') as AstFields;
      const arg = aggregateArgument(fields);
      return `${arg ? deparse(arg) : 'NULL::int4'} AS a${i}`;
    }),
    ...aggregateCalls.map((call, i) => {
      const fields = fieldsOf(call, 'FuncCall') as AstFields;
      const keyed = ['keyed_max', 'keyed_min'].includes(functionName(fields));
      return `${keyed ? deparse((fields.args as AstNode[])[1]) : 'NULL::int4'} AS b${i}`;
    }),
  ];
  return rolledBack(conn, async () => {
    await probe(conn, 'CREATE TEMP VIEW sluice_probe_output AS ' + deparse({ SelectStmt: select }));
    const outputs = await columnTypes(conn, 'sluice_probe_output');
    let inputs: { name: string; type: TypeRef }[] = [];
    if (probes.length) {
      await probe(conn, `CREATE TEMP VIEW sluice_probe_input AS SELECT ${probes.join(', ')} FROM ${from}`);
      inputs = await columnTypes(conn, 'sluice_probe_input');
    }
    return {
      outputs,
      groups: inputs.slice(0, groupExprs.length).map((c) => c.type),
      arguments: inputs.slice(groupExprs.length, groupExprs.length + aggregateCalls.length).map((c) => c.type),
      secondArguments: inputs.slice(groupExprs.length + aggregateCalls.length).map((c) => c.type),
    };
  });
}

async function probe(conn: StoreConnection, sql: string): Promise<void> {
  try {
    await conn.exec(sql);
  } catch (err) {
    // Positions point into generated SQL, which would mislead the user.
    if (err instanceof SqlError) throw new SqlError(err.code, err.message, { detail: err.detail, hint: err.hint });
    throw err;
  }
}

async function columnTypes(conn: StoreConnection, view: string): Promise<{ name: string; type: TypeRef }[]> {
  const result = await conn.query(
    `SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname
     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = $1::regclass AND a.attnum > 0 ORDER BY a.attnum`,
    [`pg_temp.${view}`],
  );
  return result.rows.map(([name, type, typeName]) => ({ name: name as string, type: { type: type as string, typeName: typeName as string } }));
}
