import { SqlError, SqlState } from '../engine/errors.ts';
import { outputStreamName } from '../engine/continuous-view.ts';
import { qualifiedName, quoteIdent, quoteLiteral } from '../engine/sql-text.ts';
import type { KafkaSinkTarget } from '../engine/sinks.ts';
import type { Stream } from '../engine/stream.ts';
import type { TransformPlan, ViewPlan } from '../engine/view-plan.ts';
import type { Expr } from '../engine/expressions/index.ts';
import { compileExpression } from './expression-compiler.ts';
import type { AstFields, AstNode } from './ast.ts';
import { deparse, fieldsOf, isStar, stringValue, transform } from './ast.ts';
import {
  collectAggregates, notSupported, readOutputStreams, referencedColumns, sourceAlias, sourceStream, typeQuery, unqualifyColumns,
  type PlannedView, type PlannerContext,
} from './planner.ts';

/**
 * `CREATE VIEW t WITH (action=transform[, outputfunc=f]) AS SELECT … FROM
 * stream [WHERE …]`: no aggregation, the selected rows go on — to the streams
 * of `pipelinedb.insert_into_stream('s', …)`, to a trigger function `f`
 * (called with each row as NEW, as PipelineDB did), and to `output_of('t')`.
 */
export async function planTransform(
  ctx: PlannerContext,
  view: { schema: string; name: string },
  select: AstFields,
  definition: string,
  outputFunction: AstFields | undefined,
): Promise<PlannedView> {
  if (select.groupClause || select.havingClause) throw notSupported('GROUP BY or HAVING in a transform', 'Aggregate in a continuous view reading the transform with output_of.');
  select.fromClause = readOutputStreams(select.fromClause as AstNode[] | undefined, ctx);
  const { stream, range, plain } = sourceStream(ctx, select);
  const alias = sourceAlias(range);
  if (plain) unqualifyColumns(select, stream, alias);
  const targets = (select.targetList as AstNode[]).map((t) => fieldsOf(t, 'ResTarget') as AstFields);
  if (collectAggregates(ctx, targets.map((t) => t.val as AstNode)).length) throw notSupported('an aggregate in a transform');
  if (!plain && targets.some((t) => isStar(t.val))) throw notSupported('* in a transform that joins tables', 'List the columns.');
  const fromSql = plain
    ? undefined
    : deparse(transform(select.fromClause, (node, kind) => (kind === 'RangeVar' && node.RangeVar === range ? { RangeVar: { ...range, schemaname: undefined } } : undefined)));
  const types = await typeQuery(ctx.conn, select, plain ? `${qualifiedName(stream.schema, stream.name)} AS ${quoteIdent(alias)}` : deparse(select.fromClause), [], []);
  // `*` becomes the stream's columns, which PostgreSQL listed for the probe.
  const outputs = targets.flatMap((t) =>
    isStar(t.val)
      ? stream.columns.map((c) => ({ name: c.name, sql: quoteIdent(c.name) }))
      : [{ name: '', sql: deparse(t.val) }],
  ).map((o, i) => ({ name: types.outputs[i].name, type: types.outputs[i].type.type, sql: o.sql }));

  const insertInto: TransformPlan['insertInto'] = [];
  let triggerFunction: string | undefined;
  const kafka: KafkaSinkTarget[] = [];
  if (outputFunction) {
    const names = ((outputFunction.names as unknown[]) ?? []).map(stringValue) as string[];
    const args = ((outputFunction.typmods as AstNode[] | undefined) ?? []).map((a) => (fieldsOf(a, 'A_Const')?.sval as { sval?: string } | undefined)?.sval ?? deparse(a));
    if (names.join('.') === 'pipelinedb.insert_into_stream' || names.join('.') === 'insert_into_stream') {
      if (args.length === 0) throw new SqlError(SqlState.invalidParameterValue, 'pipelinedb.insert_into_stream needs the streams to write to');
      for (const arg of args) {
        const dot = arg.indexOf('.');
        const target = dot > 0 ? ctx.findStream(arg.slice(0, dot), arg.slice(dot + 1)) : ctx.findStream(undefined, arg);
        if (!target) throw new SqlError(SqlState.undefinedTable, `stream "${arg}" does not exist`);
        insertInto.push({ schema: target.schema, name: target.name });
      }
    } else if (names.join('.') === 'pipeline_kafka.emit_tuple' || names.join('.') === 'emit_tuple') {
      kafka.push(emitTupleTarget(args, outputs.map((o) => o.name)));
    } else if (names.join('.') === 'pipeline_kafka.emit_upserts' || names.join('.') === 'emit_upserts') {
      kafka.push(emitUpsertsTarget(ctx, stream, args, outputs.map((o) => o.name)));
    } else {
      triggerFunction = `${names.map(quoteIdent).join('.')}(${args.map(quoteLiteral).join(', ')})`;
    }
  }
  const triggerTable = triggerFunction ? { schema: 'sluice', name: `transform_${view.schema}_${view.name}` } : undefined;
  const compiled = plain && !triggerTable ? compileTransform(select, targets, stream, types.outputs.map((o) => o.type.typeName)) : undefined;
  const plan: ViewPlan = {
    schema: view.schema,
    name: view.name,
    mrel: '',
    stream: { schema: stream.schema, name: stream.name, alias },
    columns: plain ? referencedColumns(select, stream) : stream.columns.map((c) => c.name),
    from: fromSql,
    where: select.whereClause ? deparse(select.whereClause) : undefined,
    groups: [],
    aggregates: [],
    transform: { outputs, insertInto, triggerTable, ...(kafka.length ? { kafka } : {}), ...(compiled ? { compiled } : {}) },
    definition,
  };
  if (plain && targets.some((t) => isStar(t.val))) plan.columns = stream.columns.map((c) => c.name);
  const columns = outputs.map((o) => `${quoteIdent(o.name)} ${o.type}`).join(', ');
  const ddl = [
    `CREATE FOREIGN TABLE ${qualifiedName(view.schema, outputStreamName(view.name))} (${columns}${outputs.some((o) => o.name === 'arrival_timestamp') ? '' : ', arrival_timestamp timestamptz'}) SERVER pipelinedb OPTIONS (output_of ${quoteLiteral(`${view.schema}.${view.name}`)})`,
    ...(triggerTable
      ? [
          `CREATE TABLE ${qualifiedName(triggerTable.schema, triggerTable.name)} (${columns})`,
          `CREATE TRIGGER sluice_outputfunc AFTER INSERT ON ${qualifiedName(triggerTable.schema, triggerTable.name)} FOR EACH ROW EXECUTE FUNCTION ${triggerFunction}`,
        ]
      : []),
  ];
  return { plan, ddl };
}

/**
 * The transform's WHERE and outputs compiled for the engine, when all of
 * them compile (SLUICE_COMPILE_EXPRESSIONS=off: never); `*` is the stream's columns.
 */
function compileTransform(select: AstFields, targets: AstFields[], stream: Stream, types: string[]): TransformPlan['compiled'] {
  if (process.env.SLUICE_COMPILE_EXPRESSIONS === 'off') return undefined;
  const nodes = targets.flatMap((t) => (isStar(t.val) ? stream.columns.map((c) => ({ ColumnRef: { fields: [{ String: { sval: c.name } }] } })) : [t.val]));
  const outputs = nodes.map((node, i) => compileExpression(node, stream, types[i]));
  const where = select.whereClause ? compileExpression(select.whereClause, stream, 'bool') : undefined;
  if (outputs.some((o) => o === undefined) || (select.whereClause && !where)) return undefined;
  return { ...(where ? { where } : {}), outputs: outputs as Expr[] };
}

/**
 * PipelineDB's `pipeline_kafka.emit_tuple(topic[, partition | '-1'[, key_column]])`
 * as a transform's output: each row as JSON to the brokers added with
 * add_broker, exactly once.
 */
function emitTupleTarget(args: string[], columns: string[]): KafkaSinkTarget {
  const [topic, partition, keyColumn] = args;
  if (!topic) throw new SqlError(SqlState.invalidParameterValue, 'pipeline_kafka.emit_tuple needs the topic to write to');
  if (partition !== undefined && partition !== '-1' && !/^\d+$/.test(partition)) {
    throw new SqlError(SqlState.invalidParameterValue, `emit_tuple's partition must be a partition number or '-1', not "${partition}"`);
  }
  if (keyColumn !== undefined && !columns.includes(keyColumn)) {
    throw new SqlError(SqlState.undefinedColumn, `emit_tuple's key column "${keyColumn}" is not a column of the transform`, { hint: `Its columns: ${columns.join(', ')}.` });
  }
  return {
    brokers: null,
    topic,
    format: 'json',
    key: keyColumn === undefined ? null : quoteIdent(keyColumn),
    partition: partition === undefined || partition === '-1' ? null : Number(partition),
    delivery: 'exactly_once',
  };
}

/**
 * `pipeline_kafka.emit_upserts(topic[, brokers])` over `output_of('v')`: the
 * view as a changelog topic — each changed group keyed by its grouping
 * columns, the new row as JSON, and a tombstone when the group goes away.
 */
function emitUpsertsTarget(ctx: PlannerContext, stream: Stream, args: string[], columns: string[]): KafkaSinkTarget {
  const [topic, brokers] = args;
  if (!topic) throw new SqlError(SqlState.invalidParameterValue, 'pipeline_kafka.emit_upserts needs the topic to write to');
  const view = ctx.viewOfOutputStream?.(stream);
  if (!view || !columns.includes('old') || !columns.includes('new')) {
    throw new SqlError(SqlState.featureNotSupported, 'pipeline_kafka.emit_upserts publishes the changes of a continuous view', {
      hint: "Use it in a transform reading SELECT * FROM output_of('view').",
    });
  }
  if (view.groupingSets) {
    throw new SqlError(SqlState.featureNotSupported, `pipeline_kafka.emit_upserts of "${view.name}", a view with GROUPING SETS, CUBE or ROLLUP, is not supported`, {
      hint: 'Its key columns do not identify a row (each grouping set has its own rows): use emit_tuple, or a view with a plain GROUP BY.',
    });
  }
  const keys = view.keyColumns ?? [];
  if (keys.length === 0) throw new SqlError(SqlState.featureNotSupported, `continuous view "${view.name}" has no GROUP BY columns to key its changes by`);
  const field = (k: string) => `(coalesce("new", "old")).${quoteIdent(k)}`;
  return {
    brokers: brokers ?? null,
    topic,
    format: 'json',
    key: keys.length === 1 ? field(keys[0]) : `json_build_array(${keys.map(field).join(', ')})`,
    value: 'CASE WHEN "new" IS NULL THEN NULL ELSE to_json("new") END',
    partition: null,
    delivery: 'exactly_once',
  };
}
