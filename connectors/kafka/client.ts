import type { TopicWatermark } from '../../engine/sources.ts';
import type { KafkaMessage } from './message-decoder.ts';

/**
 * The little Sluice needs from a Kafka client library, so the library can be
 * swapped without touching the sources.
 */
export interface KafkaClient {
  /** Partition ids of a topic; throws TopicNotFoundError when it does not exist. */
  partitions(topic: string): Promise<number[]>;
  watermarks(topic: string): Promise<TopicWatermark[]>;
  /** Per partition, the first offset whose message is at or after `ms` (the high watermark when none is). */
  offsetsAtTime(topic: string, ms: number): Promise<Map<number, bigint>>;
  /** Starts reading; `onBatch` is awaited before the next batch of the same partition. */
  consume(options: ConsumeOptions): Promise<ConsumerHandle>;
  /** The client's idempotent producer (at-least-once sinks). */
  producer(): Promise<KafkaProducer>;
  /** A transactional producer; opening one fences (and aborts the open transaction of) a predecessor with the same id. */
  transactionalProducer(transactionalId: string): Promise<TransactionalProducer>;
  /** Creates the topic unless it exists (partitions and replication factor: the broker's defaults when undefined). */
  ensureTopic(topic: string, partitions?: number, replicationFactor?: number): Promise<void>;
  /** A consumer group's committed offset of a partition (undefined when it has none). */
  committedOffset(groupId: string, topic: string, partition: number): Promise<bigint | undefined>;
  close(): Promise<void>;
}

export interface OutgoingMessage {
  topic: string;
  /** null = chosen by the key's murmur2 hash (the Java client's default partitioner), or spread when there is no key. */
  partition: number | null;
  key: Buffer | null;
  /** null = a tombstone. */
  value: Buffer | null;
}

export interface KafkaProducer {
  /** Resolves once every message is acknowledged by all in-sync replicas. */
  send(messages: OutgoingMessage[]): Promise<void>;
}

export interface TransactionalProducer {
  /**
   * Produces the messages and commits `marker.offset` as the group's offset
   * of `marker.topic` partition 0, in one Kafka transaction: both or neither.
   */
  sendInTransaction(messages: OutgoingMessage[], marker: { groupId: string; topic: string; offset: bigint }): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumeOptions {
  topic: string;
  groupId: string;
  /** Next offset to read per partition. */
  positions: Map<number, bigint>;
  maxBytes: number;
  maxWaitMs: number;
  /** Partitions processed at once (kafkajs's workers); a client may process all of them concurrently. */
  parallelism: number;
  onBatch(partition: number, messages: KafkaMessage[], highWatermark: bigint): Promise<void>;
  /** The client lost its connection or gave up; the source restarts it. */
  onFailure(error: Error): void;
}

export interface ConsumerHandle {
  /** Informational only: Sluice's offsets live in the serving store. */
  commit(partition: number, nextOffset: bigint): Promise<void>;
  stop(): Promise<void>;
}

export class TopicNotFoundError extends Error {
  constructor(readonly topic: string) {
    super(`topic "${topic}" does not exist`);
    this.name = 'TopicNotFoundError';
  }
}
