import { SqlError, SqlState } from '../engine/errors.ts';
import { inTransaction } from '../engine/store.ts';
import { qualifiedName } from '../engine/sql-text.ts';
import type { AstFields, AstNode } from './ast.ts';
import { fieldsOf, functionName, nodeKind, stringValue, walk } from './ast.ts';
import { saveViewPlan, updateViewPlan } from './catalog.ts';
import { outputStreamName, type ContinuousView } from '../engine/continuous-view.ts';
import type { Stream } from '../engine/stream.ts';
import type { ViewPlan } from '../engine/view-plan.ts';
import { findStream, type StatementContext, type StatementResult } from './context.ts';
import { planContinuousView, type WindowOption } from './planner.ts';
import { planTransform } from './transform-planner.ts';

/** The parts of `CREATE VIEW`, `CREATE CONTINUOUS VIEW` and `CREATE MATERIALIZED VIEW` that matter here. */
export interface ViewDefinition {
  relation: AstFields;
  select: AstFields;
  options: AstNode[];
  replace: boolean;
  materialized: boolean;
}

export function viewDefinition(kind: string, stmt: AstFields): ViewDefinition | undefined {
  if (kind === 'ViewStmt') {
    const select = fieldsOf(stmt.query, 'SelectStmt');
    if (!select) return undefined;
    return { relation: stmt.view as AstFields, select, options: (stmt.options as AstNode[] | undefined) ?? [], replace: stmt.replace === true, materialized: false };
  }
  if (kind === 'CreateTableAsStmt' && stmt.objtype === 'OBJECT_MATVIEW') {
    const select = fieldsOf(stmt.query, 'SelectStmt');
    const into = stmt.into as AstFields;
    if (!select) return undefined;
    return { relation: into.rel as AstFields, select, options: (into.options as AstNode[] | undefined) ?? [], replace: false, materialized: true };
  }
  return undefined;
}

/** A view is continuous when it reads a stream (PipelineDB 1.0) or asks for it with `action`. */
export function isContinuous(ctx: Pick<StatementContext, 'engine'>, def: ViewDefinition): boolean {
  if (def.options.some((o) => fieldsOf(o, 'DefElem')?.defname === 'action')) return true;
  let readsStream = false;
  walk(def.select.fromClause, (node, kind) => {
    if (kind === 'FuncCall' && functionName(node.FuncCall as AstFields) === 'output_of') readsStream = true;
    if (kind === 'RangeVar') {
      const range = node.RangeVar as AstFields;
      if (findStream(ctx, range.schemaname as string | undefined, range.relname as string)) readsStream = true;
    }
  });
  return readsStream;
}

function optionValue(option: AstFields): string | undefined {
  const arg = option.arg;
  if (!arg) return undefined;
  const typeName = fieldsOf(arg, 'TypeName');
  if (typeName) return ((typeName.names as unknown[]).map(stringValue) as string[]).join('.');
  return stringValue(arg) ?? (nodeKind(arg) === 'Integer' ? String((fieldsOf(arg, 'Integer') as AstFields).ival ?? 0) : undefined);
}

/** The view options Sluice understands; the rest are refused by name. */
interface ViewOptions {
  /** action=transform, with its outputfunc (parsed as a type name whose modifiers are the arguments). */
  transform?: { outputFunction?: AstFields };
  ttl?: string;
  ttlColumn?: string;
  window?: WindowOption;
  /** PipelineDB's `fillfactor` for the `_mrel`. */
  fillfactor?: number;
}

/**
 * Every update of a group rewrites its row: room on each page lets PostgreSQL
 * keep the new version beside the old one without touching the index (a HOT
 * update) and prune the old one there, and autovacuum visits an `_mrel` long
 * before the default 20% of it is dead. PipelineDB's default fillfactor is 50 too.
 */
const defaultFillfactor = 50;
const mrelAutovacuum = 'autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05';

function checkOptions(def: ViewDefinition): ViewOptions {
  const options: ViewOptions = {};
  for (const node of def.options) {
    const option = fieldsOf(node, 'DefElem') as AstFields;
    const name = option.defname as string;
    if (name === 'ttl') {
      options.ttl = optionValue(option);
      continue;
    }
    if (name === 'outputfunc') {
      options.transform = { ...options.transform, outputFunction: fieldsOf(option.arg, 'TypeName') };
      continue;
    }
    if (name === 'ttl_column') {
      options.ttlColumn = optionValue(option);
      continue;
    }
    if (name === 'sw' || name === 'sw_column' || name === 'step_factor') {
      options.window ??= { interval: '' };
      const value = optionValue(option);
      if (name === 'sw') options.window.interval = value ?? '';
      else if (name === 'sw_column') options.window.column = value;
      else options.window.stepFactor = Number(value);
      continue;
    }
    if (name === 'fillfactor') {
      const value = Number(optionValue(option));
      if (!Number.isInteger(value) || value < 10 || value > 100) throw new SqlError(SqlState.invalidParameterValue, `fillfactor must be an integer from 10 to 100, not "${optionValue(option)}"`);
      options.fillfactor = value;
      continue;
    }
    if (name === 'action') {
      const action = optionValue(option)?.toLowerCase();
      if (action === 'materialize') continue;
      if (action === 'transform') {
        options.transform ??= {};
        continue;
      }
      throw new SqlError(SqlState.invalidParameterValue, `invalid action "${action}"`, { hint: 'Use action=materialize or action=transform.' });
    }
    throw new SqlError(SqlState.featureNotSupported, `continuous view option "${name}" is not supported yet`);
  }
  if (options.transform?.outputFunction && !def.options.some((o) => fieldsOf(o, 'DefElem')?.defname === 'action')) {
    throw new SqlError(SqlState.invalidParameterValue, 'outputfunc needs action=transform');
  }
  if (options.window && !options.window.interval) throw new SqlError(SqlState.invalidParameterValue, 'sw_column and step_factor need sw', { hint: "WITH (sw = '1 hour', sw_column = 'ts')" });
  if (options.window && options.ttl !== undefined) throw new SqlError(SqlState.invalidParameterValue, 'a view cannot have both sw and ttl');
  if ((options.ttl === undefined) !== (options.ttlColumn === undefined)) {
    throw new SqlError(SqlState.invalidParameterValue, 'ttl and ttl_column must be given together', { hint: "WITH (ttl = '1 month', ttl_column = 'minute')" });
  }
  return options;
}

export async function createContinuousView(ctx: StatementContext, def: ViewDefinition, text: string): Promise<StatementResult> {
  if (def.replace) throw new SqlError(SqlState.featureNotSupported, 'CREATE OR REPLACE of a continuous view is not supported', { hint: 'DROP the view and create it again.' });
  const options = checkOptions(def);
  const schema = (def.relation.schemaname as string | undefined) ?? 'public';
  const name = def.relation.relname as string;
  // Read now, not at start: CREATE AGGREGATE may have added one since.
  const aggregates = new Set((await ctx.conn.query("SELECT DISTINCT proname FROM pg_proc WHERE prokind = 'a'")).rows.map(([n]) => n as string));
  const planner = {
    conn: ctx.conn,
    findStream: (s: string | undefined, n: string) => findStream(ctx, s, n),
    isAggregate: (n: string) => aggregates.has(n),
    defaultSchema: schema,
    viewOfOutputStream: (stream: Stream) =>
      ctx.engine.allViews().find((v) => v.plan.schema === stream.schema && outputStreamName(v.plan.name) === stream.name)?.plan,
  };
  // Planning runs in the view's transaction: it may create types the view needs (first_values of several values).
  const plan = await inTransaction(ctx.conn, async () => {
    const { plan, ddl } = options.transform
      ? await planTransform(planner, { schema, name }, def.select, text, options.transform.outputFunction)
      : await planContinuousView(planner, { schema, name }, def.select, text, options.window);
    if (options.ttl !== undefined && options.ttlColumn !== undefined) plan.ttl = await ttlOf(ctx, plan, options.ttl, options.ttlColumn);
    for (const statement of ddl) await ctx.conn.exec(statement);
    if (!options.transform && !plan.appendOnly) {
      await ctx.conn.exec(`ALTER TABLE ${qualifiedName(plan.schema, plan.mrel)} SET (fillfactor = ${options.fillfactor ?? defaultFillfactor}, ${mrelAutovacuum})`);
    }
    await saveViewPlan(ctx.conn, plan);
    return plan;
  });
  await ctx.reloadStreams();
  ctx.engine.addView(plan);
  await ctx.catalogChanged();
  return { tag: def.materialized ? 'SELECT 0' : 'CREATE VIEW' };
}

/**
 * PipelineDB's TTL: `ttl_column` must be a grouping column of the view holding
 * timestamps (so whole groups expire), the interval at least one second.
 */
export async function ttlOf(ctx: StatementContext, plan: ViewPlan, interval: string, column: string): Promise<ViewPlan['ttl']> {
  const group = plan.groups.find((g) => g.column === column);
  if (!group || !['timestamptz', 'timestamp', 'date'].includes(group.typeName)) {
    throw new SqlError(SqlState.invalidParameterValue, `ttl_column "${column}" must be a grouping column of type timestamp or date in view "${plan.name}"`);
  }
  const index = plan.groups.indexOf(group);
  if (plan.groupingSets && !plan.groupingSets.sets.every((set) => set.includes(index))) {
    // Rows of a set without the column have no time to expire by.
    throw new SqlError(SqlState.featureNotSupported, `ttl_column "${column}" of view "${plan.name}" must be in every grouping set`, {
      hint: `Group by ${column} outside the GROUPING SETS, CUBE or ROLLUP: GROUP BY ${column}, ROLLUP (…).`,
    });
  }
  const seconds = Number((await ctx.conn.query('SELECT extract(epoch FROM $1::interval)::text', [interval])).rows[0][0]);
  if (!(seconds >= 1)) throw new SqlError(SqlState.invalidParameterValue, `ttl must be at least 1 second, not "${interval}"`);
  return { interval, column };
}

/** A continuous view named by a relation reference. */
export function findView(ctx: Pick<StatementContext, 'engine'>, relation: AstFields): ContinuousView | undefined {
  const name = relation.relname as string;
  const schema = relation.schemaname as string | undefined;
  return schema ? ctx.engine.view(schema, name) : ctx.engine.view('public', name) ?? ctx.engine.allViews().find((v) => v.name === name);
}

/** `ALTER VIEW v SET (ttl = '…', ttl_column = '…')`, as pipelinedb.set_ttl. */
export async function alterViewOptions(ctx: StatementContext, view: ContinuousView, cmds: AstNode[]): Promise<StatementResult> {
  let ttl: string | undefined;
  let column = view.plan.ttl?.column;
  for (const cmd of cmds) {
    const fields = fieldsOf(cmd, 'AlterTableCmd') as AstFields;
    if (fields.subtype !== 'AT_SetRelOptions') throw new SqlError(SqlState.featureNotSupported, 'ALTER VIEW of a continuous view supports only SET (ttl = …, ttl_column = …)');
    for (const node of (fieldsOf(fields.def, 'List')?.items as AstNode[] | undefined) ?? []) {
      const option = fieldsOf(node, 'DefElem') as AstFields;
      if (option.defname === 'ttl') ttl = optionValue(option);
      else if (option.defname === 'ttl_column') column = optionValue(option);
      else throw new SqlError(SqlState.featureNotSupported, `ALTER VIEW … SET (${option.defname as string}) is not supported for a continuous view`);
    }
  }
  if (view.plan.window) throw new SqlError(SqlState.invalidParameterValue, 'a sliding-window view cannot have a ttl');
  if (ttl === undefined || column === undefined) throw new SqlError(SqlState.invalidParameterValue, 'ALTER VIEW … SET needs ttl and ttl_column', { hint: "ALTER VIEW v SET (ttl = '1 day', ttl_column = 'day')" });
  const plan = { ...view.plan, ttl: await ttlOf(ctx, view.plan, ttl, column) };
  await updateViewPlan(ctx.conn, plan);
  ctx.engine.addView(plan).active = view.active;
  return { tag: 'ALTER VIEW' };
}
