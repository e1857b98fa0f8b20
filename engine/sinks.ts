/**
 * What the engine asks of Kafka sinks (rows written to a topic): declared
 * here so the engine does not depend on a connector, implemented in
 * connectors/kafka.
 */
import { quoteIdent, quoteLiteral } from './sql-text.ts';
import type { StoreConnection } from './store.ts';
import { arrivalTimestamp, type Stream } from './stream.ts';

/**
 * exactly_once: messages are recorded in the store's outbox in the writing
 * transaction and produced by a transactional relay, so each committed row is
 * in the topic once. at_least_once: produced before the writing transaction
 * commits — faster, but a crash in between produces them again.
 */
export type SinkDelivery = 'exactly_once' | 'at_least_once';

export const sinkDeliveries: readonly SinkDelivery[] = ['exactly_once', 'at_least_once'];

export interface KafkaSinkTarget {
  /** Bootstrap servers of the target cluster; null = those added with pipeline_kafka.add_broker. */
  brokers: string | null;
  topic: string;
  format: 'json' | 'csv' | 'text';
  /** SQL over the row's columns giving the message key; null = no key. */
  key: string | null;
  /** SQL over the row's columns giving the message value (NULL = tombstone); null = the row in `format`. */
  value?: string | null;
  /** A fixed partition; null = by key (the Java client's murmur2 partitioner), spread when there is no key. */
  partition: number | null;
  delivery: SinkDelivery;
}

export interface KafkaSinks {
  /**
   * Sends the messages `sql` selects (columns key, value: text) to a topic,
   * within the caller's store transaction; the value of `delivery` says when
   * they reach Kafka. Returns how many there were.
   */
  write(conn: StoreConnection, target: KafkaSinkTarget, sql: string, params: readonly (string | null)[]): Promise<number>;
}

/** The sink of a stream declared `SERVER kafka OPTIONS (…)`: writing to the stream produces to its topic. */
export function streamSinkTarget(stream: Stream): KafkaSinkTarget | undefined {
  const o = stream.kafkaOptions;
  if (!o) return undefined;
  return {
    brokers: o.brokers ?? null,
    topic: o.topic,
    format: (o.format as KafkaSinkTarget['format'] | undefined) ?? 'json',
    key: o.key ?? null,
    partition: o.partition !== undefined ? Number(o.partition) : null,
    delivery: (o.delivery as SinkDelivery | undefined) ?? 'exactly_once',
  };
}

/** The columns a row's message holds: all but arrival_timestamp. */
export function messageColumns(names: readonly string[]): string[] {
  return names.filter((n) => n !== arrivalTimestamp);
}

/**
 * SQL selecting (key, value) text for each row of `from` (a sub-select whose
 * columns include `columns`). JSON is PostgreSQL's own rendering (to_json of
 * the row, column names as keys); CSV quotes as COPY … CSV does.
 */
export function messagesSql(target: KafkaSinkTarget, columns: readonly string[], from: string): string {
  const key = target.key ? `(${target.key})::text` : 'NULL::text';
  const custom = target.value !== undefined && target.value !== null;
  const inner = `SELECT ${key} AS "sluice$key"${custom ? `, (${target.value})::text AS "sluice$value"` : ''}, * FROM ${from}`;
  if (custom) return `SELECT r."sluice$key" AS key, r."sluice$value" AS value FROM (${inner}) AS r`;
  if (target.format === 'csv') return `SELECT r."sluice$key" AS key, ${csvRowSql(columns, 'r')} AS value FROM (${inner}) AS r`;
  if (target.format === 'text') return `SELECT r."sluice$key" AS key, ${textRowSql(columns, 'r')} AS value FROM (${inner}) AS r`;
  const fields = columns.map((c) => `r.${quoteIdent(c)}`).join(', ');
  return `SELECT r."sluice$key" AS key, to_json(sluice_row)::text AS value FROM (${inner}) AS r CROSS JOIN LATERAL (SELECT ${fields}) AS sluice_row`;
}

/** A row as a CSV line (COPY's rules: NULL is nothing, a value with a delimiter, quote, newline or nothing in it is quoted). */
function csvRowSql(columns: readonly string[], alias: string): string {
  const fields = columns.map((c) => {
    const v = `${alias}.${quoteIdent(c)}::text`;
    return `CASE WHEN ${v} IS NULL THEN '' WHEN ${v} = '' OR ${v} ~ '[",\\r\\n]' THEN '"' || replace(${v}, '"', '""') || '"' ELSE ${v} END`;
  });
  return `concat_ws(${quoteLiteral(',')}, ${fields.join(', ')})`;
}

/** A row as a line of COPY's text format: tab-separated, NULL as \N, backslash escapes. */
function textRowSql(columns: readonly string[], alias: string): string {
  const fields = columns.map((c) => {
    const v = `${alias}.${quoteIdent(c)}::text`;
    return `coalesce(replace(replace(replace(replace(${v}, E'\\\\', E'\\\\\\\\'), E'\\t', E'\\\\t'), E'\\n', E'\\\\n'), E'\\r', E'\\\\r'), E'\\\\N')`;
  });
  return `concat_ws(E'\\t', ${fields.join(', ')})`;
}
