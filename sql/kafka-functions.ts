import { SqlError, SqlState } from '../engine/errors.ts';
import type { KafkaConsumerSpec, KafkaSources, MessageFormat } from '../engine/sources.ts';
import { findStream, type StatementContext } from './context.ts';
import { required, textOid, type FunctionArguments, type FunctionRegistry, type SluiceFunction } from './functions.ts';

/**
 * pipeline_kafka's SQL API, with PipelineDB's names, parameters and defaults:
 * add_broker, remove_broker, consume_begin, consume_end (and their
 * stream-partitioned forms), topic_watermarks.
 */
const consumerParameters = [
  { name: 'group_id', default: null },
  { name: 'format', default: 'text' },
  { name: 'delimiter', default: null },
  { name: 'quote', default: null },
  { name: 'escape', default: null },
  { name: 'batchsize', default: '10000' },
  { name: 'maxbytes', default: '32000000' },
  { name: 'parallelism', default: '1' },
  { name: 'timeout', default: '250' },
  { name: 'start_offset', default: null },
];

function kafkaOf(ctx: StatementContext): KafkaSources {
  if (!ctx.kafka) throw new SqlError(SqlState.featureNotSupported, 'Kafka support is not enabled in this server');
  return ctx.kafka;
}

function positiveInteger(args: FunctionArguments, name: string): number {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value <= 0) throw new SqlError(SqlState.invalidParameterValue, `${name} must be a positive integer, not "${args[name]}"`);
  return value;
}

function consumerSpec(ctx: StatementContext, args: FunctionArguments, stream: KafkaConsumerSpec['stream']): KafkaConsumerSpec {
  const format = (args.format ?? 'text').toLowerCase();
  if (format !== 'text' && format !== 'csv' && format !== 'json') {
    throw new SqlError(SqlState.invalidParameterValue, `invalid format "${args.format}"`, { hint: "Use 'text', 'csv' or 'json'." });
  }
  const start = args.start_offset;
  if (start !== null && start !== undefined && !/^-?\d+$/.test(start)) throw new SqlError(SqlState.invalidParameterValue, `start_offset must be an integer, not "${start}"`);
  const startOffset = start === null || start === undefined ? null : BigInt(start);
  if (startOffset !== null && startOffset < -2n) throw new SqlError(SqlState.invalidParameterValue, 'start_offset must be -2 (beginning), -1 (end) or an offset');
  void ctx;
  return {
    topic: required(args, 'topic'),
    stream,
    groupId: args.group_id ?? null,
    format: format as MessageFormat,
    delimiter: args.delimiter ?? null,
    quote: args.quote ?? null,
    escape: args.escape ?? null,
    batchSize: positiveInteger(args, 'batchsize'),
    maxBytes: positiveInteger(args, 'maxbytes'),
    parallelism: positiveInteger(args, 'parallelism'),
    timeoutMs: positiveInteger(args, 'timeout'),
    startOffset,
    brokers: null,
  };
}

/** A timestamptz argument read by the store, in the session's time zone and date style. */
async function timestampArgument(ctx: StatementContext, text: string): Promise<Date> {
  const epoch = Number((await ctx.conn.query('SELECT extract(epoch FROM $1::timestamptz)::text', [text])).rows[0][0]);
  if (!Number.isFinite(epoch)) throw new SqlError(SqlState.datetimeFieldOverflow, `from_time must be a point in time, not "${text}"`);
  return new Date(epoch * 1000);
}

const int8Oid = 20;

function streamArgument(ctx: StatementContext, relation: string): { schema: string; name: string } {
  const dot = relation.indexOf('.');
  const stream = dot > 0 ? findStream(ctx, relation.slice(0, dot), relation.slice(dot + 1)) : findStream(ctx, undefined, relation);
  if (!stream) throw new SqlError(SqlState.undefinedTable, `stream "${relation}" does not exist`, { hint: 'Create it with CREATE FOREIGN TABLE … SERVER pipelinedb.' });
  return { schema: stream.schema, name: stream.name };
}

const kafkaFunctions: SluiceFunction[] = [
  {
    schema: 'pipeline_kafka',
    name: 'add_broker',
    parameters: [{ name: 'host' }],
    resultType: textOid,
    call: async (ctx, args) => {
      await kafkaOf(ctx).addBroker(ctx.conn, required(args, 'host'));
      return 'success';
    },
  },
  {
    schema: 'pipeline_kafka',
    name: 'remove_broker',
    parameters: [{ name: 'host' }],
    resultType: textOid,
    call: async (ctx, args) => {
      await kafkaOf(ctx).removeBroker(ctx.conn, required(args, 'host'));
      return 'success';
    },
  },
  {
    schema: 'pipeline_kafka',
    name: 'consume_begin',
    parameters: [{ name: 'topic', optional: true }, { name: 'relation', optional: true }, ...consumerParameters],
    resultType: textOid,
    call: async (ctx, args) => {
      const kafka = kafkaOf(ctx);
      if (args.topic === undefined && args.relation === undefined) {
        await kafka.consumeBeginAll(ctx.conn);
        return 'success';
      }
      const stream = streamArgument(ctx, required(args, 'relation'));
      await kafka.consumeBegin(ctx.conn, consumerSpec(ctx, args, stream));
      return 'success';
    },
  },
  {
    schema: 'pipeline_kafka',
    name: 'consume_end',
    parameters: [{ name: 'topic', optional: true }, { name: 'relation', optional: true }],
    resultType: textOid,
    call: async (ctx, args) => {
      const kafka = kafkaOf(ctx);
      if (args.topic === undefined && args.relation === undefined) await kafka.consumeEnd(ctx.conn);
      else await kafka.consumeEnd(ctx.conn, required(args, 'topic'), streamArgument(ctx, required(args, 'relation')));
      return 'success';
    },
  },
  {
    schema: 'pipeline_kafka',
    name: 'replay',
    parameters: [{ name: 'topic' }, { name: 'relation' }, { name: 'from_offset', default: null }, { name: 'from_time', default: null }, { name: 'rebuild', default: 'true' }],
    resultType: int8Oid,
    call: async (ctx, args) => {
      const offset = args.from_offset;
      const time = args.from_time;
      if ((offset === null || offset === undefined) === (time === null || time === undefined)) {
        throw new SqlError(SqlState.invalidParameterValue, 'replay takes from_offset or from_time (one of them)');
      }
      if (offset !== null && offset !== undefined && !/^\d+$/.test(offset)) throw new SqlError(SqlState.invalidParameterValue, `from_offset must be an offset, not "${offset}"`);
      const from = offset !== null && offset !== undefined ? { offset: BigInt(offset) } : { time: await timestampArgument(ctx, time as string) };
      const rebuild = ['true', 't', 'on', 'yes', '1'].includes(String(args.rebuild).toLowerCase());
      return String(await kafkaOf(ctx).replay(ctx.conn, required(args, 'topic'), streamArgument(ctx, required(args, 'relation')), from, rebuild));
    },
  },
  {
    schema: 'pipeline_kafka',
    name: 'set_rate_limit',
    parameters: [{ name: 'topic' }, { name: 'relation' }, { name: 'messages_per_second', default: null }, { name: 'bytes_per_second', default: null }],
    resultType: textOid,
    call: async (ctx, args) => {
      const limit = (name: string) => (args[name] === null || args[name] === undefined ? null : positiveInteger(args, name));
      await kafkaOf(ctx).setRateLimit(ctx.conn, required(args, 'topic'), streamArgument(ctx, required(args, 'relation')), {
        messagesPerSecond: limit('messages_per_second'),
        bytesPerSecond: limit('bytes_per_second'),
      });
      return 'success';
    },
  },
  {
    schema: 'pipeline_kafka',
    name: 'consume_begin_stream_partitioned',
    parameters: [{ name: 'topic' }, ...consumerParameters],
    resultType: textOid,
    call: async (ctx, args) => {
      await kafkaOf(ctx).consumeBegin(ctx.conn, consumerSpec(ctx, args, undefined));
      return 'success';
    },
  },
  {
    schema: 'pipeline_kafka',
    name: 'consume_end_stream_partitioned',
    parameters: [{ name: 'topic' }],
    resultType: textOid,
    call: async (ctx, args) => {
      await kafkaOf(ctx).consumeEnd(ctx.conn, required(args, 'topic'), undefined, true);
      return 'success';
    },
  },
  {
    schema: 'pipeline_kafka',
    name: 'topic_watermarks',
    parameters: [{ name: 'topic' }, { name: 'partition', default: null }],
    resultType: textOid,
    resultColumns: [
      { name: 'topic', typeOid: 25 },
      { name: 'partition', typeOid: 23 },
      { name: 'low', typeOid: 20 },
      { name: 'high', typeOid: 20 },
    ],
    call: async (ctx, args) => {
      const topic = required(args, 'topic');
      const partition = args.partition === null || args.partition === undefined ? undefined : Number(args.partition);
      const marks = await kafkaOf(ctx).topicWatermarks(ctx.conn, topic, partition);
      return { rows: marks.map((m) => [topic, String(m.partition), String(m.low), String(m.high)]) };
    },
  },
];

export function registerKafkaFunctions(registry: FunctionRegistry): void {
  for (const fn of kafkaFunctions) registry.register(fn);
}
