import { Kafka, logLevel, Partitioners, type Admin, type Consumer, type Producer, type TopicMessages } from 'kafkajs';
import type { TopicWatermark } from '../../engine/sources.ts';
import {
  TopicNotFoundError, type ConsumeOptions, type ConsumerHandle, type KafkaClient, type KafkaProducer, type OutgoingMessage, type TransactionalProducer,
} from './client.ts';
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

  async offsetsAtTime(topic: string, ms: number): Promise<Map<number, bigint>> {
    const marks = await this.watermarks(topic);
    const admin = await this.connectedAdmin();
    const found = await admin.fetchTopicOffsetsByTimestamp(topic, ms);
    const high = new Map(marks.map((m) => [m.partition, m.high]));
    // Kafka answers -1 for a partition with no message that late.
    return new Map(found.map((o) => [o.partition, BigInt(o.offset) < 0n ? (high.get(o.partition) ?? 0n) : BigInt(o.offset)]));
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
      // Never restarted by kafkajs itself: that would rejoin without our seeks, beside the consumer the source starts.
      retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000, restartOnFailure: async () => false },
    });
    consumer.on(consumer.events.CRASH, (event) => options.onFailure(event.payload.error));
    // kafkajs fetches again only once every batch of the last fetch is processed:
    // processing is handing over, not waiting for the store.
    const handover = new Handover(options.onBatch, options.onFailure);
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: true });
      await this.runConsumer(consumer, options, handover);
    } catch (err) {
      // A consumer left running here would stay in the group, holding partitions nobody reads.
      await consumer.disconnect().catch(() => undefined);
      await handover.stop();
      throw err;
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

  private async runConsumer(consumer: Consumer, options: ConsumeOptions, handover: Handover): Promise<void> {
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
  }

  private shared: Promise<Producer> | undefined;

  async producer(): Promise<KafkaProducer> {
    this.shared ??= this.connectProducer({ idempotent: true });
    const producer = await this.shared.catch((err) => {
      this.shared = undefined;
      throw err;
    });
    return {
      send: async (messages) => {
        for (const chunk of requestChunks(messages)) await producer.sendBatch({ topicMessages: byTopic(chunk), acks: -1 });
      },
    };
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const producer = await this.connectProducer({ idempotent: true, transactionalId, maxInFlightRequests: 1 });
    return {
      sendInTransaction: async (messages, marker) => {
        const transaction = await producer.transaction();
        try {
          for (const chunk of requestChunks(messages)) await transaction.sendBatch({ topicMessages: byTopic(chunk), acks: -1 });
          await transaction.sendOffsets({
            consumerGroupId: marker.groupId,
            topics: [{ topic: marker.topic, partitions: [{ partition: 0, offset: String(marker.offset) }] }],
          });
          await transaction.commit();
        } catch (err) {
          await transaction.abort().catch(() => undefined);
          throw err;
        }
      },
      close: () => producer.disconnect(),
    };
  }

  private async connectProducer(options: { idempotent: boolean; transactionalId?: string; maxInFlightRequests?: number }): Promise<Producer> {
    const producer = this.kafka.producer({
      ...options,
      // Java's default partitioner (murmur2 of the key), so keys land where a Java producer would put them.
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      transactionTimeout: 60_000,
    });
    await producer.connect();
    return producer;
  }

  async ensureTopic(topic: string, partitions?: number, replicationFactor?: number): Promise<void> {
    const admin = await this.connectedAdmin();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions ?? -1, replicationFactor: replicationFactor ?? -1 }], waitForLeaders: true });
    } catch (err) {
      if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw err;
    }
  }

  async committedOffset(groupId: string, topic: string, partition: number): Promise<bigint | undefined> {
    const admin = await this.connectedAdmin();
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const offset = entry?.partitions.find((p) => p.partition === partition)?.offset;
    return offset === undefined || offset === '-1' ? undefined : BigInt(offset);
  }

  async close(): Promise<void> {
    const shared = this.shared;
    this.shared = undefined;
    await shared?.then((p) => p.disconnect()).catch(() => undefined);
    await this.admin?.disconnect();
    this.admin = undefined;
  }
}

function byTopic(messages: OutgoingMessage[]): TopicMessages[] {
  const topics = new Map<string, TopicMessages>();
  for (const m of messages) {
    let entry = topics.get(m.topic);
    if (!entry) topics.set(m.topic, (entry = { topic: m.topic, messages: [] }));
    entry.messages.push(m.partition === null ? { key: m.key, value: m.value } : { key: m.key, value: m.value, partition: m.partition });
  }
  return [...topics.values()];
}

/**
 * A produce request carries one record batch per partition, and the broker
 * refuses a batch over message.max.bytes (1 MB by default): requests are
 * kept well under that, whatever the partitioner does with their messages.
 */
const requestBytes = 512 * 1024;

function* requestChunks(messages: OutgoingMessage[]): Generator<OutgoingMessage[]> {
  let chunk: OutgoingMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    // Key, value and the record's own overhead (lengths, offsets, timestamp, headers).
    const size = (m.key?.length ?? 0) + (m.value?.length ?? 0) + 70;
    if (chunk.length && bytes + size > requestBytes) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length) yield chunk;
}
