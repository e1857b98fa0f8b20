import { SqlError, SqlState } from '../engine/errors.ts';
import { qualifiedName, quoteIdent } from '../engine/sql-text.ts';
import { sinkDeliveries, type SinkDelivery } from '../engine/sinks.ts';
import { inTransaction, type StoreConnection } from '../engine/store.ts';
import { allowInternalDrops } from './catalog-guard.ts';
import { arrivalTimestamp } from '../engine/stream.ts';
import { finalFunctionName, outputStreamName, windowFunctionName, type ContinuousView } from '../engine/continuous-view.ts';
import type { ContinuousTransform } from '../engine/continuous-transform.ts';
import { deleteViewPlan, kafkaServer } from './catalog.ts';
import type { AstFields, AstNode } from './ast.ts';
import { fieldsOf, stringValue } from './ast.ts';
import { findStream, type StatementContext, type StatementResult } from './context.ts';

/** What DROP handles: continuous views and transforms. */
type Reader = ContinuousView | ContinuousTransform;

/** `CREATE FOREIGN TABLE s (…) SERVER pipelinedb` (or `CREATE STREAM s (…)`). */
export async function createStream(ctx: StatementContext, stmt: AstFields, text: string): Promise<StatementResult> {
  const base = stmt.base as AstFields;
  const relation = base.relation as AstFields;
  const elements = (base.tableElts as AstNode[] | undefined) ?? [];
  for (const element of elements) {
    const column = fieldsOf(element, 'ColumnDef');
    if (!column) throw new SqlError(SqlState.featureNotSupported, 'constraints on streams are not supported', { hint: 'A stream stores no rows; constrain the tables its views write to.' });
    if (((column.constraints as unknown[] | undefined) ?? []).length) {
      throw new SqlError(SqlState.featureNotSupported, `constraints on stream columns are not supported (column "${column.colname as string}")`);
    }
  }
  const kafkaOptions = stmt.servername === kafkaServer ? checkKafkaOptions(stmt) : undefined;
  const declaresArrival = elements.some((e) => fieldsOf(e, 'ColumnDef')?.colname === arrivalTimestamp);
  const name = qualifiedName((relation.schemaname as string | undefined) ?? 'public', relation.relname as string);
  await inTransaction(ctx.conn, async () => {
    await ctx.conn.exec(text);
    if (!declaresArrival && !(base.if_not_exists && findStream(ctx, relation.schemaname as string | undefined, relation.relname as string))) {
      await ctx.conn.exec(`ALTER FOREIGN TABLE ${relation.schemaname ? name : quoteIdent(relation.relname as string)} ADD COLUMN ${arrivalTimestamp} timestamptz`);
    }
    const key = kafkaOptions?.get('key');
    if (key) await checkKeyExpression(ctx.conn, relation.schemaname ? name : quoteIdent(relation.relname as string), key);
  });
  await ctx.reloadStreams();
  await ctx.catalogChanged();
  return { tag: 'CREATE FOREIGN TABLE' };
}

const kafkaStreamOptions = new Set([
  'brokers', 'topic', 'format', 'delimiter', 'quote', 'escape', 'group_id', 'start_offset', 'batchsize', 'maxbytes', 'parallelism', 'timeout',
  // Writing to the topic: the message key (a column or an expression over the columns), a fixed partition, the guarantee.
  'key', 'partition', 'delivery',
  // A missing topic to write to: created (with these partitions and replication factor; the broker's defaults), or not.
  'create_topic', 'partitions', 'replication_factor',
]);

/**
 * `SERVER kafka OPTIONS (topic '…', brokers '…', format 'json', …)`: the
 * options pipeline_kafka's consume_begin takes, and those of writing to the topic.
 */
function checkKafkaOptions(stmt: AstFields): Map<string, string> {
  const options = new Map<string, string>();
  for (const node of (stmt.options as AstNode[] | undefined) ?? []) {
    const option = fieldsOf(node, 'DefElem') as AstFields;
    const name = option.defname as string;
    if (!kafkaStreamOptions.has(name)) {
      throw new SqlError(SqlState.invalidParameterValue, `invalid option "${name}" for a Kafka stream`, { hint: `Valid options: ${[...kafkaStreamOptions].join(', ')}.` });
    }
    options.set(name, stringValue(option.arg) ?? '');
  }
  if (!options.get('topic')) throw new SqlError(SqlState.invalidParameterValue, 'a stream on SERVER kafka needs OPTIONS (topic \'…\')');
  const format = options.get('format') ?? 'json';
  if (!['json', 'csv', 'text'].includes(format)) throw new SqlError(SqlState.invalidParameterValue, `invalid format "${format}"`, { hint: "Use 'json', 'csv' or 'text'." });
  const delivery = options.get('delivery');
  if (delivery !== undefined && !sinkDeliveries.includes(delivery as SinkDelivery)) {
    throw new SqlError(SqlState.invalidParameterValue, `invalid delivery "${delivery}"`, { hint: `Use ${sinkDeliveries.map((d) => `'${d}'`).join(' or ')}.` });
  }
  const partition = options.get('partition');
  if (partition !== undefined && !/^\d+$/.test(partition)) throw new SqlError(SqlState.invalidParameterValue, `partition must be a partition number, not "${partition}"`);
  for (const count of ['partitions', 'replication_factor']) {
    const value = options.get(count);
    if (value !== undefined && !/^[1-9]\d{0,4}$/.test(value)) throw new SqlError(SqlState.invalidParameterValue, `${count} must be a positive whole number, not "${value}"`);
  }
  const create = options.get('create_topic');
  if (create !== undefined && !['true', 'false', 'on', 'off'].includes(create.toLowerCase())) {
    throw new SqlError(SqlState.invalidParameterValue, `create_topic must be true or false, not "${create}"`);
  }
  return options;
}

/** The key option is SQL over the stream's columns: PostgreSQL checks it now rather than at the first write. */
async function checkKeyExpression(conn: StoreConnection, stream: string, key: string): Promise<void> {
  await conn.exec(`CREATE TEMP VIEW sluice_key_check AS SELECT (${key})::text FROM ${stream}; DROP VIEW sluice_key_check;`);
}

interface DropTarget {
  schema?: string;
  name: string;
}

function dropTargets(stmt: AstFields): DropTarget[] {
  return ((stmt.objects as AstNode[] | undefined) ?? []).map((object) => {
    const parts = ((fieldsOf(object, 'List')?.items as unknown[] | undefined) ?? []).map(stringValue) as string[];
    return parts.length > 1 ? { schema: parts[parts.length - 2], name: parts[parts.length - 1] } : { name: parts[0] };
  });
}

/** Whether a DROP statement names a stream or a continuous view (and so is Sluice's to run). */
export function dropsSluiceObjects(ctx: Pick<StatementContext, 'engine'>, stmt: AstFields): boolean {
  const type = stmt.removeType as string;
  if (type === 'OBJECT_FOREIGN_TABLE') return dropTargets(stmt).some((t) => findStream(ctx, t.schema, t.name));
  if (type === 'OBJECT_VIEW' || type === 'OBJECT_MATVIEW') return dropTargets(stmt).some((t) => findView(ctx, t));
  return false;
}

function findView(ctx: Pick<StatementContext, 'engine'>, target: DropTarget): Reader | undefined {
  const { engine } = ctx;
  if (target.schema) return engine.view(target.schema, target.name) ?? engine.transform(target.schema, target.name);
  return (
    engine.view('public', target.name) ??
    engine.transform('public', target.name) ??
    [...engine.allViews(), ...engine.allTransforms()].find((v) => v.name === target.name)
  );
}

/** DROP VIEW / DROP FOREIGN TABLE / DROP STREAM naming Sluice objects, with PostgreSQL's dependency rules. */
export async function dropObjects(ctx: StatementContext, stmt: AstFields): Promise<StatementResult> {
  const cascade = stmt.behavior === 'DROP_CASCADE';
  const type = stmt.removeType as string;
  const views: Reader[] = [];
  const tag = type === 'OBJECT_FOREIGN_TABLE' ? 'DROP FOREIGN TABLE' : type === 'OBJECT_MATVIEW' ? 'DROP MATERIALIZED VIEW' : 'DROP VIEW';
  const others: DropTarget[] = [];
  for (const target of dropTargets(stmt)) {
    if (type === 'OBJECT_FOREIGN_TABLE') {
      const stream = findStream(ctx, target.schema, target.name);
      if (!stream) {
        others.push(target);
        continue;
      }
      const readers = ctx.engine.readersOf(stream);
      if (readers.length && !cascade) throw dependencyError('foreign table', stream.name, readers);
      for (const reader of readers) collectWithDependents(ctx, reader, cascade, views);
      others.push(target);
    } else {
      const view = findView(ctx, target);
      if (view) collectWithDependents(ctx, view, cascade, views);
      else others.push(target);
    }
  }
  await inTransaction(ctx.conn, async () => {
    await allowInternalDrops(ctx.conn);
    for (const view of views) await dropContinuousView(ctx, view, cascade);
    if (others.length) {
      const keyword = type === 'OBJECT_FOREIGN_TABLE' ? 'FOREIGN TABLE' : type === 'OBJECT_MATVIEW' ? 'MATERIALIZED VIEW' : 'VIEW';
      const names = others.map((t) => (t.schema ? qualifiedName(t.schema, t.name) : quoteIdent(t.name)));
      await ctx.conn.exec(`DROP ${keyword}${stmt.missing_ok ? ' IF EXISTS' : ''} ${names.join(', ')}${cascade ? ' CASCADE' : ''}`);
    }
  });
  for (const view of views) ctx.engine.removeView(view.plan.schema, view.plan.name);
  await ctx.reloadStreams();
  await ctx.catalogChanged();
  return { tag };
}

function dependencyError(kind: string, name: string, dependents: Reader[]): SqlError {
  return new SqlError(SqlState.dependentObjectsStillExist, `cannot drop ${kind} ${name} because other objects depend on it`, {
    detail: dependents.map((v) => `view ${v.name} depends on ${kind} ${name}`).join('\n'),
    hint: 'Use DROP ... CASCADE to drop the dependent objects too.',
  });
}

/** The views reading a view's output stream, dependents first, as PostgreSQL orders a cascade. */
function collectWithDependents(ctx: StatementContext, view: Reader, cascade: boolean, into: Reader[]): void {
  if (into.includes(view)) return;
  const output = ctx.engine.stream(view.plan.schema, outputStreamName(view.plan.name));
  const dependents = output ? ctx.engine.readersOf(output) : [];
  if (dependents.length && !cascade) throw dependencyError('view', view.name, dependents);
  for (const dependent of dependents) collectWithDependents(ctx, dependent, cascade, into);
  into.push(view);
}

async function dropContinuousView(ctx: StatementContext, view: Reader, cascade: boolean): Promise<void> {
  const { schema, name, mrel } = view.plan;
  await ctx.conn.exec(`DROP FOREIGN TABLE IF EXISTS ${qualifiedName(schema, outputStreamName(name))}`);
  if (view.plan.transform) {
    const table = view.plan.transform.triggerTable;
    if (table) await ctx.conn.exec(`DROP TABLE IF EXISTS ${qualifiedName(table.schema, table.name)}`);
    await deleteViewPlan(ctx.conn, schema, name);
    return;
  }
  await ctx.conn.exec(`DROP FUNCTION IF EXISTS ${qualifiedName(schema, finalFunctionName(name))}(${qualifiedName(schema, mrel)})`);
  await ctx.conn.exec(`DROP FUNCTION IF EXISTS ${qualifiedName(schema, windowFunctionName(name))}(timestamptz)`);
  await ctx.conn.exec(`DROP VIEW IF EXISTS ${qualifiedName(schema, name)}${cascade ? ' CASCADE' : ''}`);
  await ctx.conn.exec(`DROP TABLE IF EXISTS ${qualifiedName(schema, mrel)}${cascade ? ' CASCADE' : ''}`);
  for (const type of view.plan.ownedTypes ?? []) await ctx.conn.exec(`DROP TYPE IF EXISTS ${type}${cascade ? ' CASCADE' : ''}`);
  await deleteViewPlan(ctx.conn, schema, name);
}
