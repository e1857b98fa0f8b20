import { SqlError, SqlState } from '../../engine/errors.ts';
import type { StoreConnection } from '../../engine/store.ts';
import type { OutgoingMessage } from './client.ts';

/**
 * The outbox: messages for Kafka written in the same store transaction as
 * whatever produced them (a transform's batch and its source offsets, a
 * table's trigger, produce_message), so they exist exactly when that
 * transaction committed. The relay claims them in order, produces them in a
 * Kafka transaction, then deletes them.
 *
 * `cluster` is the target's bootstrap servers as the stream names them; ''
 * means the brokers added with pipeline_kafka.add_broker.
 */
export const outboxCatalogSql = `
CREATE TABLE IF NOT EXISTS pipeline_kafka.outbox (
  id bigserial PRIMARY KEY,
  cluster text NOT NULL DEFAULT '',
  topic text NOT NULL,
  partition integer,
  key bytea,
  value bytea,
  claim bigint
);
CREATE INDEX IF NOT EXISTS outbox_pending ON pipeline_kafka.outbox (cluster, claim, id);
CREATE TABLE IF NOT EXISTS pipeline_kafka.instance (id text NOT NULL);
INSERT INTO pipeline_kafka.instance SELECT md5(random()::text || clock_timestamp()::text) WHERE NOT EXISTS (SELECT FROM pipeline_kafka.instance);
CREATE OR REPLACE FUNCTION pipeline_kafka.produce_message(topic text, message bytea, partition integer DEFAULT NULL, key bytea DEFAULT NULL)
  RETURNS text LANGUAGE sql AS
  $$ INSERT INTO pipeline_kafka.outbox (topic, partition, key, value) VALUES ($1, $3, $4, $2) RETURNING 'success'::text $$;
CREATE OR REPLACE FUNCTION pipeline_kafka.emit_tuple() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  tuple json := row_to_json(NEW);
BEGIN
  IF TG_NARGS < 1 THEN
    RAISE EXCEPTION 'pipeline_kafka.emit_tuple needs the topic to write to' USING ERRCODE = '22023';
  END IF;
  INSERT INTO pipeline_kafka.outbox (topic, partition, key, value) VALUES (
    TG_ARGV[0],
    CASE WHEN TG_NARGS > 1 AND TG_ARGV[1] <> '-1' THEN TG_ARGV[1]::integer END,
    CASE WHEN TG_NARGS > 2 THEN convert_to(tuple ->> TG_ARGV[2], 'UTF8') END,
    convert_to(tuple::text, 'UTF8'));
  RETURN NULL;
END $$;
CREATE OR REPLACE VIEW pipeline_kafka.outbox_backlog AS
  SELECT CASE WHEN cluster = '' THEN '(add_broker)' ELSE cluster END AS brokers, topic, count(*) AS pending
  FROM pipeline_kafka.outbox GROUP BY cluster, topic;
-- What each cluster's relay last said of itself (state running or retrying, the last error), for pipeline_kafka.sinks.
CREATE TABLE IF NOT EXISTS pipeline_kafka.sink_status (
  cluster text PRIMARY KEY,
  state text NOT NULL,
  last_error text,
  last_error_at timestamptz,
  delivered bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE VIEW pipeline_kafka.sinks AS
  SELECT d.relation, d.kind, d.brokers, d.topic, d.format, d.key, d.delivery, d.create_topic, d.partitions, d.replication_factor,
         -- at_least_once sinks produce while the write runs: their errors go to the writer.
         CASE WHEN d.delivery = 'exactly_once' THEN coalesce(st.state, 'starting') END AS state,
         CASE WHEN d.delivery = 'exactly_once' THEN st.last_error END AS last_error,
         CASE WHEN d.delivery = 'exactly_once' THEN st.last_error_at END AS last_error_at,
         (SELECT count(*) FROM pipeline_kafka.outbox ob WHERE ob.cluster = d.cluster AND ob.topic = d.topic) AS pending
  FROM (
    SELECT c.oid::regclass::text AS relation, 'stream'::text AS kind,
           coalesce(o.brokers, '(add_broker)') AS brokers, o.topic, coalesce(o.format, 'json') AS format, o.key,
           coalesce(o.delivery, 'exactly_once') AS delivery, lower(o.create_topic) IN ('true', 'on') OR o.create_topic IS NULL AS create_topic,
           o.partitions::int AS partitions, o.replication_factor::int AS replication_factor, coalesce(o.brokers, '') AS cluster
    FROM pg_foreign_table ft
    JOIN pg_class c ON c.oid = ft.ftrelid
    JOIN pg_foreign_server s ON s.oid = ft.ftserver AND s.srvname = 'kafka'
    CROSS JOIN LATERAL (
      SELECT max(option_value) FILTER (WHERE option_name = 'brokers') AS brokers,
             max(option_value) FILTER (WHERE option_name = 'topic') AS topic,
             max(option_value) FILTER (WHERE option_name = 'format') AS format,
             max(option_value) FILTER (WHERE option_name = 'key') AS key,
             max(option_value) FILTER (WHERE option_name = 'delivery') AS delivery,
             max(option_value) FILTER (WHERE option_name = 'create_topic') AS create_topic,
             max(option_value) FILTER (WHERE option_name = 'partitions') AS partitions,
             max(option_value) FILTER (WHERE option_name = 'replication_factor') AS replication_factor
      FROM pg_options_to_table(ft.ftoptions)) AS o
    UNION ALL
    SELECT v.schema || '.' || v.name, 'transform', coalesce(k ->> 'brokers', '(add_broker)'), k ->> 'topic', k ->> 'format', k ->> 'key', k ->> 'delivery',
           true, NULL::int, NULL::int, coalesce(k ->> 'brokers', '')
    FROM sluice.views v CROSS JOIN LATERAL jsonb_array_elements(coalesce(v.plan -> 'transform' -> 'kafka', '[]')) AS k
  ) AS d
  LEFT JOIN pipeline_kafka.sink_status st ON st.cluster = d.cluster;
`;

export async function instanceId(conn: StoreConnection): Promise<string> {
  return (await conn.query('SELECT id FROM pipeline_kafka.instance LIMIT 1')).rows[0][0] as string;
}

/** Records messages selected by `sql` (columns key, value: text) in the outbox; returns how many. */
export async function addToOutbox(
  conn: StoreConnection,
  target: { cluster: string; topic: string; partition: number | null },
  sql: string,
  params: readonly (string | null)[],
): Promise<number> {
  const n = params.length;
  const result = await conn.query(
    `WITH added AS (
       INSERT INTO pipeline_kafka.outbox (cluster, topic, partition, key, value)
       SELECT $${n + 1}, $${n + 2}, $${n + 3}::integer, convert_to(m.key, 'UTF8'), convert_to(m.value, 'UTF8') FROM (${sql}) AS m
       RETURNING coalesce(octet_length(key), 0) + coalesce(octet_length(value), 0) AS bytes)
     SELECT count(*), coalesce(max(bytes), 0) FROM added`,
    [...params, target.cluster, target.topic, target.partition === null ? null : String(target.partition)],
  );
  const [count, largest] = result.rows[0].map(Number);
  checkMessageSize(target.topic, largest);
  return count;
}

/** Kafka refuses a message over the broker's message.max.bytes (1 MB by default). */
export const maxMessageBytes = Number(process.env.SLUICE_KAFKA_MAX_MESSAGE_BYTES ?? 1_000_000);

/** Fails the write (a data error: a Kafka source sets the row's message aside) when a message is too large for Kafka. */
export function checkMessageSize(topic: string, bytes: number): void {
  if (bytes <= maxMessageBytes) return;
  throw new SqlError(SqlState.programLimitExceeded, `a message for Kafka topic "${topic}" would be ${bytes} bytes, more than the ${maxMessageBytes} Kafka accepts`, {
    hint: 'Select fewer or smaller columns, or raise the broker\'s message.max.bytes and SLUICE_KAFKA_MAX_MESSAGE_BYTES.',
  });
}

/** The bytes of a message's key and value (what maxMessageBytes limits). */
export function payloadBytes(m: OutgoingMessage): number {
  return (m.key?.length ?? 0) + (m.value?.length ?? 0);
}

/** Moves messages Kafka cannot take (too large: written by a trigger or produce_message) to the dead letters. */
export async function setAsideOversized(conn: StoreConnection, cluster: string, claim: bigint, limit: number): Promise<number> {
  const result = await conn.query(
    `WITH oversized AS (
       DELETE FROM pipeline_kafka.outbox
       WHERE cluster = $1 AND claim = $2 AND coalesce(octet_length(key), 0) + coalesce(octet_length(value), 0) > $3
       RETURNING id, topic, partition, key, value)
     INSERT INTO pipeline_kafka.dead_letters (consumer_id, topic, partition, "offset", key, value, error)
     SELECT NULL, topic, coalesce(partition, -1), id, key, value, '54000: too large for Kafka (outbox message ' || id || ')' FROM oversized`,
    [cluster, String(claim), String(limit)],
  );
  return Number(/\d+$/.exec(result.command)?.[0] ?? 0);
}

/** Claims up to `limit` unclaimed messages of a cluster, oldest first. */
export async function claimMessages(conn: StoreConnection, cluster: string, claim: bigint, limit: number): Promise<OutgoingMessage[]> {
  const result = await conn.query(
    `WITH claimed AS (
       UPDATE pipeline_kafka.outbox SET claim = $2
       WHERE id IN (SELECT id FROM pipeline_kafka.outbox WHERE cluster = $1 AND claim IS NULL ORDER BY id LIMIT $3)
       RETURNING id, topic, partition, key, value)
     SELECT topic, partition, key, value FROM claimed ORDER BY id`,
    [cluster, String(claim), String(limit)],
  );
  return result.rows.map(([topic, partition, key, value]) => ({
    topic: topic as string,
    partition: partition === null ? null : Number(partition),
    key: bytes(key),
    value: bytes(value),
  }));
}

/**
 * After a restart: claims up to `committed` reached Kafka (delete them), later
 * ones did not (release them to be claimed again).
 */
export async function settleClaims(conn: StoreConnection, cluster: string, committed: bigint): Promise<void> {
  await conn.query('DELETE FROM pipeline_kafka.outbox WHERE cluster = $1 AND claim <= $2', [cluster, String(committed)]);
  await conn.query('UPDATE pipeline_kafka.outbox SET claim = NULL WHERE cluster = $1 AND claim > $2', [cluster, String(committed)]);
}

export async function deleteClaim(conn: StoreConnection, cluster: string, claim: bigint): Promise<void> {
  await conn.query('DELETE FROM pipeline_kafka.outbox WHERE cluster = $1 AND claim = $2', [cluster, String(claim)]);
}

export async function outboxBacklog(conn: StoreConnection, cluster: string): Promise<number> {
  return Number((await conn.query('SELECT count(*) FROM pipeline_kafka.outbox WHERE cluster = $1', [cluster])).rows[0][0]);
}

export async function outboxClusters(conn: StoreConnection): Promise<string[]> {
  return (await conn.query('SELECT DISTINCT cluster FROM pipeline_kafka.outbox')).rows.map(([c]) => c as string);
}

/** A bytea in PostgreSQL's text output (hex). */
function bytes(text: string | null): Buffer | null {
  return text === null ? null : Buffer.from(text.slice(2), 'hex');
}

/** A relay's state for pipeline_kafka.sinks (best effort: a store it cannot reach cannot be told either). */
export async function recordSinkState(conn: StoreConnection, cluster: string, state: 'running' | 'retrying', error?: string): Promise<void> {
  await conn.query(
    `INSERT INTO pipeline_kafka.sink_status (cluster, state, last_error, last_error_at) VALUES ($1, $2, $3, CASE WHEN $3::text IS NOT NULL THEN now() END)
     ON CONFLICT (cluster) DO UPDATE SET state = EXCLUDED.state, updated_at = now(),
       last_error = coalesce(EXCLUDED.last_error, sink_status.last_error), last_error_at = coalesce(EXCLUDED.last_error_at, sink_status.last_error_at)`,
    [cluster, state, error ?? null],
  );
}

export async function countDelivered(conn: StoreConnection, cluster: string, count: number): Promise<void> {
  await conn.query('UPDATE pipeline_kafka.sink_status SET delivered = delivered + $2, updated_at = now() WHERE cluster = $1', [cluster, String(count)]);
}
