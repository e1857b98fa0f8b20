/**
 * What the SQL layer asks of external sources (Kafka): declared here so the
 * SQL layer does not depend on a connector, implemented in connectors/kafka.
 */
import type { StoreConnection } from './store.ts';

export type MessageFormat = 'text' | 'csv' | 'json';

export interface KafkaConsumerSpec {
  topic: string;
  /** The stream the messages go to (schema, name); for stream-partitioned consumers, each message's key names it. */
  stream?: { schema: string; name: string };
  groupId: string | null;
  format: MessageFormat;
  delimiter: string | null;
  quote: string | null;
  escape: string | null;
  batchSize: number;
  maxBytes: number;
  parallelism: number;
  timeoutMs: number;
  /** -1 = end, -2 = beginning, n = that offset, null = resume where this consumer left off. */
  startOffset: bigint | null;
  /** Brokers of this consumer (a stream declared `SERVER kafka`); null = those added with add_broker. */
  brokers: string | null;
}

export interface TopicWatermark {
  partition: number;
  low: bigint;
  high: bigint;
}

export interface KafkaSources {
  addBroker(conn: StoreConnection, host: string): Promise<void>;
  removeBroker(conn: StoreConnection, host: string): Promise<void>;
  /** Starts (and records) a consumer; resolves once it runs. */
  consumeBegin(conn: StoreConnection, spec: KafkaConsumerSpec): Promise<void>;
  /** consume_begin() without arguments: restarts every consumer that was ended. */
  consumeBeginAll(conn: StoreConnection): Promise<number>;
  /** Stops consumers of a topic into a stream; with neither given, all consumers. */
  consumeEnd(conn: StoreConnection, topic?: string, stream?: { schema: string; name: string }, partitioned?: boolean): Promise<number>;
  topicWatermarks(conn: StoreConnection, topic: string, partition?: number): Promise<TopicWatermark[]>;
  /**
   * Sets the consumers of a topic into a stream back to an offset (every
   * partition) or to the first message at or after a time; with `rebuild`
   * the views fed by the stream are emptied first, in the same transaction,
   * so they end as if built from there. Returns the messages to be read again.
   */
  replay(conn: StoreConnection, topic: string, stream: { schema: string; name: string }, from: { offset?: bigint; time?: Date }, rebuild: boolean): Promise<bigint>;
  /** Limits the consumers of a topic into a stream to so many messages and bytes per second (null: no limit), at once and after restarts. */
  setRateLimit(conn: StoreConnection, topic: string, stream: { schema: string; name: string }, limit: { messagesPerSecond: number | null; bytesPerSecond: number | null }): Promise<void>;
  /**
   * Streams declared on SERVER kafka are their topic: each one read by a view
   * gets a consumer, started or stopped as views come and go.
   */
  syncDeclaredStreams(conn: StoreConnection): Promise<void>;
}
