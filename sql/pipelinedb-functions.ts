import { SqlError, SqlState } from '../engine/errors.ts';
import type { ContinuousView } from '../engine/continuous-view.ts';
import type { ContinuousTransform } from '../engine/continuous-transform.ts';
import { qualifiedName } from '../engine/sql-text.ts';
import { setViewActive, updateViewPlan } from './catalog.ts';
import { expireOnce } from '../engine/ttl.ts';
import { ttlOf } from './view-ddl.ts';
import type { StatementContext } from './context.ts';
import { required, type FunctionRegistry, type SluiceFunction } from './functions.ts';

/**
 * The pipelinedb.* administration functions that act on the engine:
 * activate, deactivate, truncate_continuous_view.
 */
const boolOid = 16;
const voidOid = 2278;
const int4Oid = 23;
const textOid = 25;

function viewNamed(ctx: StatementContext, name: string): ContinuousView {
  const dot = name.indexOf('.');
  const view = dot > 0 ? ctx.engine.view(name.slice(0, dot), name.slice(dot + 1)) : ctx.engine.view('public', name) ?? ctx.engine.allViews().find((v) => v.name === name);
  if (!view) throw new SqlError(SqlState.undefinedTable, `continuous view "${name}" does not exist`);
  return view;
}

/** activate/deactivate also take a transform. */
function viewOrTransformNamed(ctx: StatementContext, name: string): ContinuousView | ContinuousTransform {
  const dot = name.indexOf('.');
  const transform = dot > 0 ? ctx.engine.transform(name.slice(0, dot), name.slice(dot + 1)) : ctx.engine.transform('public', name) ?? ctx.engine.allTransforms().find((t) => t.name === name);
  return transform ?? viewNamed(ctx, name);
}

function activation(name: 'activate' | 'deactivate', active: boolean): SluiceFunction {
  return {
    schema: 'pipelinedb',
    name,
    parameters: [{ name: 'name' }],
    resultType: boolOid,
    call: async (ctx, args) => {
      const view = viewOrTransformNamed(ctx, required(args, 'name'));
      await setViewActive(ctx.conn, view.plan.schema, view.plan.name, active);
      view.active = active;
      return 't';
    },
  };
}

const pipelinedbFunctions: SluiceFunction[] = [
  activation('activate', true),
  activation('deactivate', false),
  {
    schema: 'pipelinedb',
    name: 'ttl_expire',
    parameters: [{ name: 'name' }],
    resultType: int4Oid,
    call: async (ctx, args) => {
      const view = viewNamed(ctx, required(args, 'name'));
      if (!view.plan.ttl) throw new SqlError(SqlState.invalidParameterValue, `continuous view "${view.name}" has no TTL`);
      let total = 0;
      for (;;) {
        const removed = await expireOnce(ctx.conn, ctx.engine, view, ctx.clock(), 10_000);
        total += removed;
        if (removed === 0) return String(total);
      }
    },
  },
  {
    schema: 'pipelinedb',
    name: 'set_ttl',
    parameters: [{ name: 'name' }, { name: 'ttl' }, { name: 'ttl_column' }],
    resultType: boolOid,
    call: async (ctx, args) => {
      const view = viewNamed(ctx, required(args, 'name'));
      const ttl = args.ttl === null || args.ttl === undefined ? undefined : await ttlOf(ctx, view.plan, args.ttl, required(args, 'ttl_column'));
      const plan = { ...view.plan, ttl };
      await updateViewPlan(ctx.conn, plan);
      ctx.engine.addView(plan).active = view.active;
      return 't';
    },
  },
  {
    schema: 'pipelinedb',
    name: 'combine_table',
    parameters: [{ name: 'name' }, { name: 'table' }],
    resultType: boolOid,
    call: async (ctx, args) => {
      const view = viewNamed(ctx, required(args, 'name'));
      const table = (await ctx.conn.query('SELECT $1::regclass::text', [required(args, 'table')])).rows[0][0] as string;
      await view.combineTable(ctx.conn, table);
      return 't';
    },
  },
  {
    // Sluice's own: whether a view's (or transform's) batches are evaluated by the engine (compiled) or by the store.
    schema: 'sluice',
    name: 'view_evaluation',
    parameters: [{ name: 'name' }],
    resultType: textOid,
    call: async (ctx, args) => (viewOrTransformNamed(ctx, required(args, 'name')).aggregatesInEngine ? 'engine' : 'store'),
  },
  {
    schema: 'pipelinedb',
    name: 'truncate_continuous_view',
    parameters: [{ name: 'name' }],
    resultType: voidOid,
    call: async (ctx, args) => {
      const view = viewNamed(ctx, required(args, 'name'));
      await ctx.conn.exec(`TRUNCATE ${qualifiedName(view.plan.schema, view.plan.mrel)}`);
      return '';
    },
  },
];

export function registerPipelinedbFunctions(registry: FunctionRegistry): void {
  for (const fn of pipelinedbFunctions) registry.register(fn);
}
