import { Kafka, logLevel, type Admin, type Consumer } from 'kafkajs';
import type { TopicWatermark } from '../../engine/sources.ts';
import { TopicNotFoundError, type ConsumeOptions, type ConsumerHandle, type KafkaClient } from './client.ts';
import { Handover } from './handover.ts';

/** KafkaClient over kafkajs. */
export class KafkajsClient implements KafkaClient {
  private readonly kafka: Kafka;
  private admin: Admin | undefined;

  constructor(brokers: string[]) {
    this.kafka = new Kafka({
      clientId: 'sluice',
      brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
    });
  }

  private async connectedAdmin(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    return this.admin;
  }

  async partitions(topic: string): Promise<number[]> {
    const admin = await this.connectedAdmin();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      return metadata.topics[0].partitions.map((p) => p.partitionId).sort((a, b) => a - b);
    } catch (err) {
      if ((err as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') throw new TopicNotFoundError(topic);
      throw err;
    }
  }

  async watermarks(topic: string): Promise<TopicWatermark[]> {
    await this.partitions(topic);
    const admin = await this.connectedAdmin();
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets
      .map((o) => ({ partition: o.partition, low: BigInt(o.low), high: BigInt(o.high) }))
      .sort((a, b) => a.partition - b.partition);
  }

  async consume(options: ConsumeOptions): Promise<ConsumerHandle> {
    const consumer: Consumer = this.kafka.consumer({
      groupId: options.groupId,
      maxBytesPerPartition: options.maxBytes,
      maxWaitTimeInMs: options.maxWaitMs,
      allowAutoTopicCreation: false,
      // A killed process's partitions come back after this long when a fixed group_id is used.
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) options.onFailure(event.payload.error);
    });
    // kafkajs fetches again only once every batch of the last fetch is processed:
    // processing is handing over, not waiting for the store.
    const handover = new Handover(options.onBatch, options.onFailure);
    await consumer.connect();
    await consumer.subscribe({ topic: options.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: options.parallelism,
      // kafkajs fetches each partition from its *resolved* offset: without
      // resolving, every fetch re-reads everything since the initial seek.
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        const messages = batch.messages.map((m) => ({
          partition: batch.partition,
          offset: BigInt(m.offset),
          key: m.key,
          value: m.value,
          timestamp: Number(m.timestamp),
        }));
        await handover.offer(batch.partition, messages, BigInt(batch.highWatermark));
      },
    });
    for (const [partition, offset] of options.positions) {
      consumer.seek({ topic: options.topic, partition, offset: String(offset) });
    }
    return {
      commit: async (partition, nextOffset) => {
        await consumer.commitOffsets([{ topic: options.topic, partition, offset: String(nextOffset) }]);
      },
      stop: async () => {
        await consumer.disconnect();
        await handover.stop();
      },
    };
  }

  async close(): Promise<void> {
    await this.admin?.disconnect();
    this.admin = undefined;
  }
}
