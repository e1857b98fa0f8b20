import type { StoreConnection } from '../../engine/store.ts';
import type { KafkaConsumerSpec, MessageFormat } from '../../engine/sources.ts';
import { outboxCatalogSql } from './outbox.ts';
import { alertsCatalogSql } from './alerts.ts';
import type { RateLimit } from './rate-limiter.ts';

/**
 * pipeline_kafka's catalog, in the serving store as PipelineDB users know it:
 * brokers, consumers, and the offsets each consumer has applied — written in
 * the same transaction as the view state they produced, which is what makes
 * a restart resume exactly where the views are.
 */
const bootstrapSql = `
CREATE SCHEMA IF NOT EXISTS pipeline_kafka;
CREATE TABLE IF NOT EXISTS pipeline_kafka.brokers (host text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS pipeline_kafka.consumers (
  id serial PRIMARY KEY,
  topic text NOT NULL,
  relation text NOT NULL,
  stream_partitioned boolean NOT NULL DEFAULT false,
  group_id text,
  format text NOT NULL,
  delimiter text,
  quote text,
  escape text,
  batchsize integer NOT NULL,
  maxbytes integer NOT NULL,
  parallelism integer NOT NULL,
  timeout integer NOT NULL,
  start_offset bigint,
  brokers text,
  declared boolean NOT NULL DEFAULT false,
  active boolean NOT NULL DEFAULT true,
  messages bigint NOT NULL DEFAULT 0,
  dead_letters bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (topic, relation, stream_partitioned)
);
CREATE TABLE IF NOT EXISTS pipeline_kafka.offsets (
  consumer_id integer NOT NULL REFERENCES pipeline_kafka.consumers (id) ON DELETE CASCADE,
  partition integer NOT NULL,
  "offset" bigint NOT NULL,
  PRIMARY KEY (consumer_id, partition)
);
CREATE TABLE IF NOT EXISTS pipeline_kafka.watermarks (
  consumer_id integer NOT NULL REFERENCES pipeline_kafka.consumers (id) ON DELETE CASCADE,
  partition integer NOT NULL,
  high bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_id, partition)
);
CREATE TABLE IF NOT EXISTS pipeline_kafka.dead_letters (
  id bigserial PRIMARY KEY,
  consumer_id integer,
  topic text NOT NULL,
  partition integer NOT NULL,
  "offset" bigint NOT NULL,
  key bytea,
  value bytea,
  error text NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);
-- What each running consumer last said of itself (the state of a stopped one is 'stopped').
ALTER TABLE pipeline_kafka.consumers ADD COLUMN IF NOT EXISTS state text;
ALTER TABLE pipeline_kafka.consumers ADD COLUMN IF NOT EXISTS last_error text;
ALTER TABLE pipeline_kafka.consumers ADD COLUMN IF NOT EXISTS last_error_at timestamptz;
-- pipeline_kafka.set_rate_limit: NULL is no limit.
ALTER TABLE pipeline_kafka.consumers ADD COLUMN IF NOT EXISTS max_messages_per_second bigint;
ALTER TABLE pipeline_kafka.consumers ADD COLUMN IF NOT EXISTS max_bytes_per_second bigint;
ALTER TABLE pipeline_kafka.offsets ADD COLUMN IF NOT EXISTS message_time timestamptz;
-- The time of the first message a throttled source holds back (NULL when it holds none).
ALTER TABLE pipeline_kafka.watermarks ADD COLUMN IF NOT EXISTS waiting_since timestamptz;
CREATE OR REPLACE VIEW pipeline_kafka.consumer_lag AS
  SELECT c.id AS consumer_id, c.topic, c.relation AS stream, w.partition,
         o."offset", w.high AS high_watermark,
         greatest(w.high - coalesce(o."offset" + 1, 0), 0) AS lag,
         -- Behind in time: the age of the first message held back, else of the last one applied, while messages wait (NULL: not known).
         CASE WHEN w.high <= coalesce(o."offset" + 1, 0) THEN 0
              WHEN coalesce(w.waiting_since, o.message_time) IS NOT NULL THEN greatest(extract(epoch FROM now() - coalesce(w.waiting_since, o.message_time)), 0) END AS lag_seconds
  FROM pipeline_kafka.consumers c
  JOIN pipeline_kafka.watermarks w ON w.consumer_id = c.id
  LEFT JOIN pipeline_kafka.offsets o ON o.consumer_id = c.id AND o.partition = w.partition;
-- One row per consumer: is it running, what went wrong last, how much it applied and how far behind it is.
CREATE OR REPLACE VIEW pipeline_kafka.sources AS
  SELECT c.id AS consumer_id, c.topic, c.relation AS stream,
         CASE WHEN NOT c.active THEN 'stopped' ELSE coalesce(c.state, 'starting') END AS state,
         c.last_error, c.last_error_at, c.messages, c.dead_letters,
         (SELECT sum(l.lag) FROM pipeline_kafka.consumer_lag l WHERE l.consumer_id = c.id)::bigint AS lag,
         c.max_messages_per_second, c.max_bytes_per_second,
         (SELECT max(l.lag_seconds) FROM pipeline_kafka.consumer_lag l WHERE l.consumer_id = c.id) AS lag_seconds
  FROM pipeline_kafka.consumers c;
`;

/** A consumer's state for pipeline_kafka.sources (an error, when there is one, is kept with its time). */
export async function recordConsumerState(conn: StoreConnection, id: number, state: string, error?: string): Promise<void> {
  await conn.query(
    `UPDATE pipeline_kafka.consumers SET state = $2, last_error = coalesce($3, last_error), last_error_at = CASE WHEN $3::text IS NULL THEN last_error_at ELSE now() END WHERE id = $1`,
    [String(id), state, error ?? null],
  );
}

export async function bootstrapKafkaCatalog(conn: StoreConnection): Promise<void> {
  await conn.exec(`BEGIN; ${bootstrapSql} ${outboxCatalogSql} ${alertsCatalogSql} COMMIT;`);
}

export interface ConsumerRecord extends KafkaConsumerSpec {
  id: number;
  partitioned: boolean;
  declared: boolean;
  /** Set by a consume_begin that named a start_offset: forget the offsets applied so far. */
  resetOffsets: boolean;
  rateLimit: RateLimit;
}

export function relationName(stream: { schema: string; name: string } | undefined): string {
  return stream ? `${stream.schema}.${stream.name}` : '';
}

function parseRelation(relation: string): { schema: string; name: string } | undefined {
  if (!relation) return undefined;
  const dot = relation.indexOf('.');
  return { schema: relation.slice(0, dot), name: relation.slice(dot + 1) };
}

const consumerColumns =
  'id, topic, relation, stream_partitioned, group_id, format, delimiter, quote, escape, batchsize, maxbytes, parallelism, timeout, brokers, declared, start_offset, max_messages_per_second, max_bytes_per_second';

function toRecord(row: (string | null)[]): ConsumerRecord {
  const [id, topic, relation, partitioned, groupId, format, delimiter, quote, escape, batchSize, maxBytes, parallelism, timeout, brokers, declared, startOffset, maxMessages, maxBytesPerSecond] = row;
  return {
    id: Number(id),
    topic: topic as string,
    stream: parseRelation(relation as string),
    partitioned: partitioned === 't',
    groupId,
    format: format as MessageFormat,
    delimiter,
    quote,
    escape,
    batchSize: Number(batchSize),
    maxBytes: Number(maxBytes),
    parallelism: Number(parallelism),
    timeoutMs: Number(timeout),
    startOffset: startOffset === null ? null : BigInt(startOffset),
    brokers,
    declared: declared === 't',
    resetOffsets: false,
    rateLimit: { messagesPerSecond: maxMessages === null || maxMessages === undefined ? null : Number(maxMessages), bytesPerSecond: maxBytesPerSecond === null || maxBytesPerSecond === undefined ? null : Number(maxBytesPerSecond) },
  };
}

/** Replay: the consumer goes on from these offsets (the next to read, per partition). */
export async function resetOffsets(conn: StoreConnection, id: number, next: Map<number, bigint>): Promise<void> {
  await conn.query('DELETE FROM pipeline_kafka.offsets WHERE consumer_id = $1', [String(id)]);
  await conn.query(
    `INSERT INTO pipeline_kafka.offsets (consumer_id, partition, "offset") SELECT $1, p, o FROM unnest($2::int[], $3::bigint[]) AS u(p, o)`,
    [String(id), `{${[...next.keys()].join(',')}}`, `{${[...next.values()].map((o) => o - 1n).join(',')}}`],
  );
}

/** A partition's high watermark as last fetched and the time of the first message held back, for consumer_lag. */
export async function recordWatermark(conn: StoreConnection, id: number, partition: number, high: bigint, waitingSinceMs: number): Promise<void> {
  await conn.query(
    `INSERT INTO pipeline_kafka.watermarks (consumer_id, partition, high, waiting_since) VALUES ($1, $2, $3, to_timestamp($4 / 1000.0))
     ON CONFLICT (consumer_id, partition) DO UPDATE SET high = EXCLUDED.high, waiting_since = EXCLUDED.waiting_since, updated_at = now()`,
    [String(id), String(partition), String(high), String(waitingSinceMs)],
  );
}

/** pipeline_kafka.set_rate_limit: records the limit of the consumers of a topic into a stream; returns their ids. */
export async function saveRateLimit(conn: StoreConnection, topic: string, stream: { schema: string; name: string }, limit: RateLimit): Promise<number[]> {
  const result = await conn.query(
    'UPDATE pipeline_kafka.consumers SET max_messages_per_second = $3, max_bytes_per_second = $4 WHERE topic = $1 AND relation = $2 RETURNING id',
    [topic, relationName(stream), limit.messagesPerSecond === null ? null : String(limit.messagesPerSecond), limit.bytesPerSecond === null ? null : String(limit.bytesPerSecond)],
  );
  return result.rows.map(([id]) => Number(id));
}

export async function loadConsumers(conn: StoreConnection): Promise<ConsumerRecord[]> {
  const result = await conn.query(`SELECT ${consumerColumns} FROM pipeline_kafka.consumers WHERE active ORDER BY id`);
  return result.rows.map(toRecord);
}

/** Records a consumer (or updates the options of an existing one); returns its id. */
export async function saveConsumer(conn: StoreConnection, spec: KafkaConsumerSpec, partitioned: boolean, declared: boolean): Promise<ConsumerRecord> {
  const result = await conn.query(
    `INSERT INTO pipeline_kafka.consumers (topic, relation, stream_partitioned, group_id, format, delimiter, quote, escape, batchsize, maxbytes, parallelism, timeout, brokers, declared, start_offset)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     ON CONFLICT (topic, relation, stream_partitioned) DO UPDATE SET active = true, group_id = EXCLUDED.group_id, format = EXCLUDED.format,
       delimiter = EXCLUDED.delimiter, quote = EXCLUDED.quote, escape = EXCLUDED.escape, batchsize = EXCLUDED.batchsize,
       maxbytes = EXCLUDED.maxbytes, parallelism = EXCLUDED.parallelism, timeout = EXCLUDED.timeout, brokers = EXCLUDED.brokers,
       start_offset = coalesce(EXCLUDED.start_offset, pipeline_kafka.consumers.start_offset)
     RETURNING ${consumerColumns}`,
    [
      spec.topic, relationName(spec.stream), partitioned ? 't' : 'f', spec.groupId, spec.format, spec.delimiter, spec.quote, spec.escape,
      String(spec.batchSize), String(spec.maxBytes), String(spec.parallelism), String(spec.timeoutMs), spec.brokers, declared ? 't' : 'f',
      spec.startOffset === null ? null : String(spec.startOffset),
    ],
  );
  return { ...toRecord(result.rows[0]), resetOffsets: spec.startOffset !== null };
}

/** consume_end: the consumer stops, its offsets stay so that a later consume_begin resumes. */
export async function deactivateConsumer(conn: StoreConnection, id: number): Promise<void> {
  await conn.query('UPDATE pipeline_kafka.consumers SET active = false WHERE id = $1', [String(id)]);
}

/** The last offset applied per partition. */
export async function loadOffsets(conn: StoreConnection, consumerId: number): Promise<Map<number, bigint>> {
  const result = await conn.query('SELECT partition, "offset" FROM pipeline_kafka.offsets WHERE consumer_id = $1', [String(consumerId)]);
  return new Map(result.rows.map(([p, o]) => [Number(p), BigInt(o as string)]));
}

/** The last offset applied for one partition, locking it for this transaction (concurrent appliers wait). */
export async function appliedOffset(conn: StoreConnection, consumerId: number, partition: number): Promise<bigint | undefined> {
  const result = await conn.query('SELECT "offset" FROM pipeline_kafka.offsets WHERE consumer_id = $1 AND partition = $2 FOR UPDATE', [String(consumerId), String(partition)]);
  const offset = result.rows[0]?.[0];
  return offset === undefined || offset === null ? undefined : BigInt(offset);
}

export async function clearOffsets(conn: StoreConnection, consumerId: number): Promise<void> {
  await conn.query('DELETE FROM pipeline_kafka.offsets WHERE consumer_id = $1', [String(consumerId)]);
}

export interface DeadLetter {
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  error: string;
}

/**
 * Records, in the transaction of the batch: the last offset applied per
 * partition, the high watermarks seen, counters, and the dead letters.
 */
export async function recordProgress(
  conn: StoreConnection,
  consumer: { id: number; topic: string },
  progress: {
    offsets: Map<number, bigint>;
    /** Per partition, the Kafka timestamp (ms) of the last message applied: how old the data in the views is. */
    times?: Map<number, number>;
    watermarks: Map<number, bigint>;
    messages: number;
    deadLetters: DeadLetter[];
  },
): Promise<void> {
  const id = String(consumer.id);
  if (progress.offsets.size) {
    const partitions = [...progress.offsets.keys()];
    await conn.query(
      `INSERT INTO pipeline_kafka.offsets (consumer_id, partition, "offset", message_time)
       SELECT $1, p, o, to_timestamp(t / 1000.0) FROM unnest($2::int[], $3::bigint[], $4::float8[]) AS u(p, o, t)
       ON CONFLICT (consumer_id, partition) DO UPDATE SET "offset" = EXCLUDED."offset", message_time = coalesce(EXCLUDED.message_time, pipeline_kafka.offsets.message_time)`,
      [id, `{${partitions.join(',')}}`, `{${[...progress.offsets.values()].join(',')}}`, `{${partitions.map((p) => progress.times?.get(p) ?? 'NULL').join(',')}}`],
    );
  }
  if (progress.watermarks.size) {
    await conn.query(
      `INSERT INTO pipeline_kafka.watermarks (consumer_id, partition, high)
       SELECT $1, p, h FROM unnest($2::int[], $3::bigint[]) AS u(p, h)
       ON CONFLICT (consumer_id, partition) DO UPDATE SET high = EXCLUDED.high, waiting_since = NULL, updated_at = now()`,
      [id, `{${[...progress.watermarks.keys()].join(',')}}`, `{${[...progress.watermarks.values()].join(',')}}`],
    );
  }
  for (const letter of progress.deadLetters) {
    await conn.query(
      `INSERT INTO pipeline_kafka.dead_letters (consumer_id, topic, partition, "offset", key, value, error)
       VALUES ($1, $2, $3, $4, decode($5, 'base64'), decode($6, 'base64'), $7)`,
      [id, consumer.topic, String(letter.partition), String(letter.offset), letter.key?.toString('base64') ?? null, letter.value?.toString('base64') ?? null, letter.error],
    );
  }
  await conn.query('UPDATE pipeline_kafka.consumers SET messages = messages + $2, dead_letters = dead_letters + $3 WHERE id = $1', [
    id,
    String(progress.messages),
    String(progress.deadLetters.length),
  ]);
}
