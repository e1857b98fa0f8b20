import {
  Admin,
  ConnectionPool,
  Consumer,
  GenericError,
  IS_CONTROL,
  ListOffsetTimestamps,
  MultipleErrors,
  type ClusterTopicMetadata,
  type fetchV17,
  type RecordsBatch,
} from '@platformatic/kafka';
import type { TopicWatermark } from '../../engine/sources.ts';
import { TopicNotFoundError, type ConsumeOptions, type ConsumerHandle, type KafkaClient, type KafkaProducer, type TransactionalProducer } from './client.ts';
import { KafkajsClient } from './kafkajs-client.ts';
import { Handover } from './handover.ts';
import type { KafkaMessage } from './message-decoder.ts';

type FetchResponse = fetchV17.FetchResponse;

const clientId = 'sluice';

/** Connection and retry settings shared by every client (close to the kafkajs client's). */
const connection = { connectTimeout: 3000, retries: 3, retryDelay: 300 };

/**
 * The byte budget of one fetch response across its partitions (kafkajs's
 * default too). Larger responses did not consume faster in the benchmark
 * (32 MB: slower), and decoding one holds the event loop (~2 µs a message).
 */
const fetchMaxBytes = 10 * 1024 * 1024;

/** Fetch errors in a row (after the library's own retries) before the consumer gives up: ~30 s. */
const maxFailures = 8;

/** Record batch attribute: every record carries the batch's maxTimestamp (LogAppendTime). */
const logAppendTime = 0x08;

/**
 * KafkaClient over @platformatic/kafka: its group membership, and Sluice's
 * own fetch loop rather than its message stream, which hands messages over
 * one by one (each with a commit closure) and drops the partitions' high
 * watermarks that consumer_lag needs.
 */
export class PlatformaticClient implements KafkaClient {
  private admin: Admin | undefined;

  constructor(private readonly brokers: string[]) {}

  private adminClient(): Admin {
    this.admin ??= new Admin({ clientId, bootstrapBrokers: this.brokers, ...connection });
    return this.admin;
  }

  async partitions(topic: string): Promise<number[]> {
    return partitionIds(await this.topicMetadata(topic));
  }

  async watermarks(topic: string): Promise<TopicWatermark[]> {
    const partitions = await this.partitions(topic);
    const [low, high] = await Promise.all([this.offsets(topic, partitions, ListOffsetTimestamps.EARLIEST), this.offsets(topic, partitions, ListOffsetTimestamps.LATEST)]);
    return partitions.map((partition) => ({ partition, low: low.get(partition) ?? 0n, high: high.get(partition) ?? 0n }));
  }

  async offsetsAtTime(topic: string, ms: number): Promise<Map<number, bigint>> {
    const partitions = await this.partitions(topic);
    const [found, high] = await Promise.all([this.offsets(topic, partitions, BigInt(ms)), this.offsets(topic, partitions, ListOffsetTimestamps.LATEST)]);
    return new Map(partitions.map((p) => [p, (found.get(p) ?? -1n) < 0n ? (high.get(p) ?? 0n) : (found.get(p) as bigint)]));
  }

  async consume(options: ConsumeOptions): Promise<ConsumerHandle> {
    const loop = new FetchLoop(this.brokers, options, () => this.watermarks(options.topic));
    await loop.start();
    return loop;
  }

  /** Sinks produce with kafkajs (its transactions are the ones Sluice's exactly-once relay is tested with). */
  private producing: KafkajsClient | undefined;

  private producerClient(): KafkajsClient {
    this.producing ??= new KafkajsClient(this.brokers);
    return this.producing;
  }

  producer(): Promise<KafkaProducer> {
    return this.producerClient().producer();
  }

  transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    return this.producerClient().transactionalProducer(transactionalId);
  }

  ensureTopic(topic: string, partitions?: number, replicationFactor?: number): Promise<void> {
    return this.producerClient().ensureTopic(topic, partitions, replicationFactor);
  }

  committedOffset(groupId: string, topic: string, partition: number): Promise<bigint | undefined> {
    return this.producerClient().committedOffset(groupId, topic, partition);
  }

  async close(): Promise<void> {
    await this.producing?.close();
    this.producing = undefined;
    await this.admin?.close();
    this.admin = undefined;
  }

  private async topicMetadata(topic: string): Promise<ClusterTopicMetadata> {
    try {
      const metadata = await this.adminClient().metadata({ topics: [topic], forceUpdate: true });
      const found = metadata.topics.get(topic);
      if (!found) throw new TopicNotFoundError(topic);
      return found;
    } catch (err) {
      if (isUnknownTopic(err)) throw new TopicNotFoundError(topic);
      throw err;
    }
  }

  private async offsets(topic: string, partitions: number[], timestamp: bigint): Promise<Map<number, bigint>> {
    const listed = await this.adminClient().listOffsets({ topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }] });
    return new Map(listed.flatMap((t) => t.partitions.map((p) => [p.partitionIndex, p.offset] as const)));
  }
}

interface PartitionState {
  /** Next offset to fetch. */
  position: bigint;
  fetching: boolean;
}

/**
 * One consumer: the library keeps the group membership (join, heartbeats,
 * rebalances), and this loop fetches the assigned partitions from their
 * leaders at Sluice's own positions, handing each partition's messages over
 * in order, one batch at a time.
 *
 * The next fetch does not wait for the store (see Handover); a partition
 * whose next batch already waits is left out of fetches until there is room.
 * Partitions are all consumed concurrently (their batches share transactions
 * through the source's group commit), so `parallelism` needs no workers here.
 */
class FetchLoop implements ConsumerHandle {
  private readonly consumer: Consumer;
  /** Fetches use their own connections: a long poll must not hold up heartbeats and commits. */
  private readonly pool: ConnectionPool;
  private readonly partitions = new Map<number, PartitionState>();
  private readonly handover: Handover;
  private readonly inflightLeaders = new Set<number>();
  private stopped = false;
  private pumping = false;
  private pumpAgain = false;
  /** Fetches failed in a row. */
  private failures = 0;
  /** Rotates the partition order of fetch requests, so a full response never starves the last ones. */
  private rotation = 0;

  constructor(
    brokers: string[],
    private readonly options: ConsumeOptions,
    private readonly watermarks: () => Promise<TopicWatermark[]>,
  ) {
    this.consumer = new Consumer({
      clientId,
      bootstrapBrokers: brokers,
      groupId: options.groupId,
      ...connection,
      // As many as the kafkajs consumer: fetches and group requests ride out a broker restart.
      retries: 5,
      autocommit: false,
      // A killed process's partitions come back after this long when a fixed group_id is used.
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 1000,
    });
    this.pool = new ConnectionPool(clientId, { connectTimeout: connection.connectTimeout });
    for (const [partition, position] of options.positions) this.partitions.set(partition, newState(position));
    this.handover = new Handover(options.onBatch, (err) => this.fail(err), () => this.pump());
  }

  async start(): Promise<void> {
    // A failed rejoin after a broker outage is reported here; without a listener it would crash the process.
    this.consumer.on('error', (err: Error) => this.fail(err));
    this.consumer.on('consumer:group:join', () => this.pump());
    this.consumer.topics.track(this.options.topic);
    try {
      await this.consumer.joinGroup({});
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.pump();
  }

  async commit(partition: number, nextOffset: bigint): Promise<void> {
    await this.consumer.commit({ offsets: [{ topic: this.options.topic, partition, offset: nextOffset, leaderEpoch: -1 }] });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.handover.stop();
    await new Promise<void>((resolve) => this.pool.close(() => resolve()));
    // Leaving the group retries while the broker is down; don't hold the shutdown for that.
    await Promise.race([new Promise<void>((resolve) => this.consumer.close(true, () => resolve())), sleep(3000)]);
  }

  /** The library gave up, or a batch could not be handed over: the source restarts from the store's offsets. */
  private fail(err: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.options.onFailure(err instanceof Error ? err : new Error(String(err)));
  }

  /** Sends a fetch to every leader that has none in flight, for its partitions that can take more. */
  private pump(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    this.sendFetches()
      .catch(async (err: unknown) => {
        await this.backOff(err);
        this.pumpAgain = true;
      })
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.pump();
        }
      });
  }

  private async sendFetches(): Promise<void> {
    const metadata = await this.consumer.metadata({ topics: [this.options.topic] });
    const topic = metadata.topics.get(this.options.topic);
    if (!topic || this.stopped) return;
    const byLeader = new Map<number, number[]>();
    for (const partition of this.assigned()) {
      const state = this.state(partition);
      const leader = topic.partitions[partition]?.leader ?? -1;
      if (state.fetching || !this.handover.hasRoom(partition) || leader < 0 || this.inflightLeaders.has(leader)) continue;
      let list = byLeader.get(leader);
      if (!list) byLeader.set(leader, (list = []));
      list.push(partition);
    }
    for (const [leader, partitions] of byLeader) void this.fetch(leader, topic.id, this.rotate(partitions));
  }

  private assigned(): number[] {
    return this.consumer.assignments?.find((a) => a.topic === this.options.topic)?.partitions ?? [];
  }

  private state(partition: number): PartitionState {
    let state = this.partitions.get(partition);
    // A partition unknown at start (added to the topic since) is read from its beginning.
    if (!state) this.partitions.set(partition, (state = newState(0n)));
    return state;
  }

  private rotate(partitions: number[]): number[] {
    const start = this.rotation++ % partitions.length;
    return [...partitions.slice(start), ...partitions.slice(0, start)];
  }

  private async fetch(leader: number, topicId: string, partitions: number[]): Promise<void> {
    this.inflightLeaders.add(leader);
    for (const p of partitions) this.state(p).fetching = true;
    try {
      const response = await this.consumer.fetch({
        node: leader,
        topics: [{ topicId, partitions: partitions.map((p) => this.fetchRequest(p)) }],
        maxWaitTime: this.options.maxWaitMs,
        minBytes: 1,
        maxBytes: fetchMaxBytes,
        connectionPool: this.pool,
      });
      this.failures = 0;
      if (!this.stopped) this.accept(response);
    } catch (err) {
      if (!this.stopped) await this.recover(err, partitions);
    } finally {
      this.inflightLeaders.delete(leader);
      for (const p of partitions) this.state(p).fetching = false;
      this.pump();
    }
  }

  private fetchRequest(partition: number) {
    return {
      partition,
      fetchOffset: this.state(partition).position,
      partitionMaxBytes: Math.min(this.options.maxBytes, fetchMaxBytes),
      currentLeaderEpoch: -1,
      lastFetchedEpoch: -1,
    };
  }

  private accept(response: FetchResponse): void {
    for (const topic of response.responses) {
      for (const partition of topic.partitions) {
        const state = this.state(partition.partitionIndex);
        const { messages, next } = decodeBatches(partition.partitionIndex, partition.records ?? [], state.position);
        state.position = next;
        // Never waits: partitions without room were not fetched.
        if (messages.length) void this.handover.offer(partition.partitionIndex, messages, partition.highWatermark).catch(() => undefined);
      }
    }
  }

  /**
   * A position outside the log (retention deleted it, the topic was
   * recreated) starts over at the log's beginning, as kafkajs does.
   */
  private async recover(err: unknown, partitions: number[]): Promise<void> {
    this.consumer.clearMetadata();
    if (!findProtocolError(err, 'OFFSET_OUT_OF_RANGE')) {
      await this.backOff(err);
      return;
    }
    const marks = await this.watermarks().catch(() => [] as TopicWatermark[]);
    for (const mark of marks) {
      const state = this.partitions.get(mark.partition);
      if (state && partitions.includes(mark.partition) && (state.position < mark.low || state.position > mark.high)) state.position = mark.low;
    }
  }

  /**
   * Waits before fetching again after an error the library already retried
   * (the broker is down or moving): the group membership survives a short
   * outage, which a new consumer would have to wait out (the old member's
   * session). After about half a minute the source restarts it all.
   */
  private async backOff(err: unknown): Promise<void> {
    if (++this.failures > maxFailures) {
      this.fail(err);
      return;
    }
    await sleep(Math.min(5000, 250 * 2 ** this.failures));
  }
}

function newState(position: bigint): PartitionState {
  return { position, fetching: false };
}

/** The messages of a partition's record batches from `from` on, and the offset after the last batch. */
function decodeBatches(partition: number, batches: RecordsBatch[], from: bigint): { messages: KafkaMessage[]; next: bigint } {
  const messages: KafkaMessage[] = [];
  let next = from;
  for (const batch of batches) {
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    if (last >= next) next = last + 1n;
    // Transaction markers take an offset but are no messages.
    if (batch.attributes & IS_CONTROL) continue;
    const appendTime = batch.attributes & logAppendTime ? Number(batch.maxTimestamp) : undefined;
    for (const record of batch.records) {
      const offset = batch.firstOffset + BigInt(record.offsetDelta);
      // A batch may start before the position asked for.
      if (offset < from) continue;
      messages.push({
        partition,
        offset,
        key: record.key,
        value: record.value,
        timestamp: appendTime ?? Number(batch.firstTimestamp + record.timestampDelta),
      });
    }
  }
  return { messages, next };
}

function partitionIds(topic: ClusterTopicMetadata): number[] {
  return topic.partitions.flatMap((p, i) => (p ? [i] : []));
}

/** The library reports a missing topic as a UserError naming it, without the protocol error behind it. */
function isUnknownTopic(err: unknown): boolean {
  return findProtocolError(err, 'UNKNOWN_TOPIC_OR_PARTITION') || (err instanceof Error && /^Unknown topic /.test(err.message));
}

function findProtocolError(err: unknown, id: string): boolean {
  if (err instanceof MultipleErrors) return err.findBy('apiId', id) !== null;
  if (err instanceof GenericError) return err.findBy('apiId', id) !== null;
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
