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
  /** Starts reading; `onBatch` is awaited before the next batch of the same partition. */
  consume(options: ConsumeOptions): Promise<ConsumerHandle>;
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
