import type { Logger } from 'pino';
import type { RowBatch } from '../../engine/batch.ts';
import { describeInvalidValue, type Engine } from '../../engine/engine.ts';
import { SqlError } from '../../engine/errors.ts';
import { BackgroundSession, inTransaction, type ServingStore, type StoreSession } from '../../engine/store.ts';
import type { Stream } from '../../engine/stream.ts';
import type { Value } from '../../engine/values/index.ts';
import { RateLimiter, type RateLimit } from './rate-limiter.ts';
import { appliedOffset, clearOffsets, loadOffsets, recordConsumerState, recordProgress, recordWatermark, type ConsumerRecord, type DeadLetter } from './catalog.ts';
import type { ConsumerHandle, KafkaClient } from './client.ts';
import { GroupCommit } from './group-commit.ts';
import { MessageDecoder, type KafkaMessage } from './message-decoder.ts';
import type { KafkaSinkWriter } from './sink-writer.ts';

export interface SourceDependencies {
  /**
   * Part of the default consumer group's name, new for every start of the
   * connector: Sluice reads its positions from the store, and a fresh group
   * never waits for the session of a killed predecessor to time out before
   * partitions are assigned, nor shares its partitions with another Sluice.
   */
  groupSuffix: string;
  store: ServingStore;
  engine: Engine;
  client: KafkaClient;
  log: Logger;
  /** The sinks the source's rows may reach: it waits while their clusters are behind. */
  sinks?: KafkaSinkWriter;
}

/** Consecutive messages of one partition, with the partition's high watermark when they were fetched. */
interface Chunk {
  partition: number;
  messages: KafkaMessage[];
  high: bigint;
}

/** Splits chunks into two halves by message count (for isolating a bad message). */
function splitChunks(chunks: Chunk[]): [Chunk[], Chunk[]] {
  const total = chunks.reduce((n, c) => n + c.messages.length, 0);
  const first: Chunk[] = [];
  const second: Chunk[] = [];
  let taken = 0;
  for (const chunk of chunks) {
    const room = Math.ceil(total / 2) - taken;
    if (room >= chunk.messages.length) first.push(chunk);
    else if (room <= 0) second.push(chunk);
    else {
      first.push({ ...chunk, messages: chunk.messages.slice(0, room) });
      second.push({ ...chunk, messages: chunk.messages.slice(room) });
    }
    taken += Math.min(Math.max(room, 0), chunk.messages.length);
  }
  return [first, second];
}

/** A batch of messages decoded into rows per target stream. */
interface DecodedBatch {
  rows: Map<Stream, { messages: KafkaMessage[]; rows: Value[][] }>;
  deadLetters: DeadLetter[];
}

/**
 * One pipeline_kafka consumer: reads a topic into a stream (or, stream-
 * partitioned, into the stream each message's key names) and delivers each
 * batch to the views in one store transaction together with the offsets it
 * covers. The offsets in the store are the truth: on start, and after any
 * redelivery by the client, messages at or below them are skipped, so each
 * message is counted exactly once however the process stops.
 */
export class KafkaSource {
  private handle: ConsumerHandle | undefined;
  private storeLine: BackgroundSession | undefined;
  /** Next offset to apply per partition. */
  private readonly next = new Map<number, bigint>();
  private readonly decoders = new Map<string, MessageDecoder>();
  private stopped = false;
  private restarting: Promise<void> | undefined;
  private state: 'starting' | 'running' | 'retrying' | 'throttled' = 'starting';
  private limiter: RateLimiter | undefined;

  constructor(
    readonly record: ConsumerRecord,
    private readonly deps: SourceDependencies,
  ) {
    this.setRateLimit(record.rateLimit);
  }

  /** Takes effect at once: a batch waiting under the old limit goes on. */
  setRateLimit(limit: RateLimit): void {
    this.record.rateLimit = limit;
    this.limiter = limit.messagesPerSecond || limit.bytesPerSecond ? new RateLimiter(limit) : undefined;
    if (!this.limiter && this.state === 'throttled') this.setState('running');
    for (const wake of this.throttleWaiters) wake();
  }

  private readonly throttleWaiters = new Set<() => void>();

  /** Waits out a throttle, or less when the limit changes or the consumer stops. */
  private throttleWait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.throttleWaiters.delete(done);
        this.stopWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.throttleWaiters.add(done);
      this.stopWaiters.add(done);
    });
  }

  get id(): number {
    return this.record.id;
  }

  /** Resolves once the consumer runs; throws when the topic does not exist. */
  async start(): Promise<void> {
    const { client } = this.deps;
    // What an earlier process left in pipeline_kafka.sources does not describe this one.
    if (this.state === 'starting') await this.withStore((session) => recordConsumerState(session.conn, this.record.id, 'starting')).catch(() => undefined);
    const partitions = await client.partitions(this.record.topic);
    const applied = await this.withStore(async (session) => {
      if (this.record.resetOffsets) await clearOffsets(session.conn, this.record.id);
      return loadOffsets(session.conn, this.record.id);
    });
    const watermarks = new Map((await client.watermarks(this.record.topic)).map((w) => [w.partition, w]));
    for (const partition of partitions) {
      const last = applied.get(partition);
      this.next.set(partition, last !== undefined ? last + 1n : this.initialPosition(watermarks.get(partition)));
    }
    this.handle = await client.consume({
      topic: this.record.topic,
      groupId: this.record.groupId ?? `sluice_consumer_${this.record.id}_${this.deps.groupSuffix}`,
      positions: this.next,
      maxBytes: this.record.maxBytes,
      maxWaitMs: this.record.timeoutMs,
      parallelism: this.record.parallelism,
      onBatch: (partition, messages, high) => this.onBatch(partition, messages, high),
      onFailure: (err) => this.restartAfter(err),
    });
    this.setState('running');
  }

  /** Where a partition with no applied offset starts: the consumer's start_offset, or the end (PipelineDB's default). */
  private initialPosition(watermark: { low: bigint; high: bigint } | undefined): bigint {
    const start = this.record.startOffset;
    if (start === -2n) return watermark?.low ?? 0n;
    if (start === null || start === -1n) return watermark?.high ?? 0n;
    return start;
  }

  private setState(state: 'starting' | 'running' | 'retrying' | 'throttled', err?: unknown): void {
    if (state === this.state) return;
    this.state = state;
    const context = { consumer: this.record.id, topic: this.record.topic };
    if (state === 'retrying') this.deps.log.warn({ ...context, err }, 'Kafka consumer lost its broker; retrying');
    else this.deps.log.info(context, `Kafka consumer ${state}`);
    const message = err === undefined ? undefined : err instanceof Error ? err.message : String(err);
    // Best effort: a store that cannot be reached cannot be told either.
    void this.withStore((session) => recordConsumerState(session.conn, this.record.id, state, message)).catch(() => undefined);
  }

  /** The client gave up (broker gone): restart with backoff until it runs again. */
  restartAfter(err: unknown): void {
    if (this.stopped || this.restarting) return;
    this.setState('retrying', err);
    this.restarting = (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        await this.handle?.stop().catch(() => undefined);
        this.handle = undefined;
        await sleep(Math.min(30_000, 500 * 2 ** attempt));
        if (this.stopped) return;
        try {
          await this.resume();
          return;
        } catch (retryErr) {
          this.deps.log.debug({ err: retryErr, consumer: this.record.id }, 'Kafka consumer restart failed');
        }
      }
    })().finally(() => (this.restarting = undefined));
  }

  /** Restarts reading from the offsets already applied (never resetting them again). */
  private async resume(): Promise<void> {
    this.record.resetOffsets = false;
    this.next.clear();
    await this.start();
  }

  /** Waits before a retry, or less when the consumer stops. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.stopWaiters.add(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private readonly stopWaiters = new Set<() => void>();

  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.stopWaiters) wake();
    this.stopWaiters.clear();
    await this.handle?.stop().catch(() => undefined);
    await this.restarting;
    await this.storeLine?.close();
  }

  private async onBatch(partition: number, messages: KafkaMessage[], high: bigint): Promise<void> {
    const from = this.next.get(partition) ?? 0n;
    const fresh = messages.filter((m) => m.offset >= from);
    if (fresh.length === 0) return;
    if (this.limiter) return this.throttled(partition, fresh, high);
    if (this.state === 'throttled') this.setState('running');
    await this.applyTogether(partition, fresh, high);
    this.commitToKafkaLater(partition);
  }

  /**
   * Applies messages of a partition in chunks of batchsize, all handed over
   * at once, so they land in the same group and hence the same transaction:
   * a later chunk can never be applied without the earlier ones (which would
   * skip them for good, as offsets only grow).
   */
  private async applyTogether(partition: number, messages: KafkaMessage[], high: bigint): Promise<void> {
    const chunks: Promise<void>[] = [];
    for (let i = 0; i < messages.length; i += this.record.batchSize) {
      chunks.push(this.commitGroup.submit({ partition, messages: messages.slice(i, i + this.record.batchSize), high }));
    }
    await Promise.all(chunks);
    this.next.set(partition, messages[messages.length - 1].offset + 1n);
  }

  /**
   * A rate-limited source applies a batch a step (at most a second's worth)
   * at a time, each after its wait, in order: a later step is applied only
   * once the earlier ones are.
   */
  private async throttled(partition: number, fresh: KafkaMessage[], high: bigint): Promise<void> {
    const sizes = fresh.map((m) => (m.value?.length ?? 0) + (m.key?.length ?? 0));
    for (let i = 0; i < fresh.length && !this.stopped; ) {
      // The limit may change (or go) while a batch waits: each step reads it again.
      const limiter = this.limiter;
      const length = limiter ? limiter.stepLength(sizes, i) : fresh.length - i;
      const step = fresh.slice(i, i + length);
      const wait = limiter?.take(step.length, sizes.slice(i, i + length).reduce((a, b) => a + b, 0)) ?? 0;
      i += length;
      if (wait > 0) {
        // The lag shows what is held back, and since when, before it is applied.
        await this.withStore((session) => recordWatermark(session.conn, this.record.id, partition, high, step[0].timestamp));
        if (this.state === 'running') this.setState('throttled');
        await this.throttleWait(wait);
        if (this.stopped) return;
      } else if (this.state === 'throttled') {
        this.setState('running');
      }
      await this.applyTogether(partition, step, high);
    }
    this.commitToKafkaLater(partition);
  }

  private lastKafkaCommit = 0;

  /** Kafka's committed offsets are only informational (for lag tools): sent at most once a second. */
  private commitToKafkaLater(partition: number): void {
    const now = Date.now();
    if (now - this.lastKafkaCommit < 1000) return;
    this.lastKafkaCommit = now;
    for (const [p, next] of this.next) if (p === partition || next > 0n) void this.handle?.commit(p, next).catch(() => undefined);
  }

  /**
   * Partitions are read concurrently; their chunks are committed together:
   * while one transaction runs, the chunks arriving meanwhile wait and go
   * into the next one (group commit), so the cost per transaction is shared.
   */
  private readonly commitGroup = new GroupCommit<Chunk>((chunks) => this.deliver(chunks));

  /** Delivers chunks in one transaction, retrying while the store is unavailable; bad messages become dead letters. */
  private async deliver(chunks: Chunk[]): Promise<void> {
    await this.waitForSinks();
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) throw new Error('the consumer was stopped');
      try {
        const started = performance.now();
        await this.withStore((session) => this.apply(session, chunks));
        this.deps.log.debug(
          {
            consumer: this.record.id,
            chunks: chunks.length,
            messages: chunks.reduce((n, c) => n + c.messages.length, 0),
            ms: Math.round(performance.now() - started),
            oldestMessageAgeMs: Date.now() - Math.min(...chunks.map((c) => c.messages[0]?.timestamp ?? Date.now())),
          },
          'delivered Kafka messages',
        );
        return;
      } catch (err) {
        if (this.stopped) throw err;
        if (isDataError(err)) {
          await this.isolate(chunks, err);
          return;
        }
        this.deps.log.warn({ err, consumer: this.record.id, attempt }, 'delivering a Kafka batch failed; retrying');
        await this.pause(Math.min(10_000, 200 * 2 ** attempt));
      }
    }
  }

  /** Backpressure: while a Kafka cluster these rows flow to is behind (slow or down), reading waits. */
  private async waitForSinks(): Promise<void> {
    const { sinks, engine } = this.deps;
    if (!sinks || this.record.partitioned) return;
    const stream = engine.stream(this.record.stream?.schema ?? '', this.record.stream?.name ?? '');
    if (stream) await sinks.waitForRoom(engine.sinkTargetsFedBy(stream));
  }

  /** A view rejected something in the chunks: find which messages, halving until one remains, which becomes a dead letter. */
  private async isolate(chunks: Chunk[], err: unknown): Promise<void> {
    const messages = chunks.flatMap((c) => c.messages);
    if (messages.length === 1) {
      const chunk = chunks.find((c) => c.messages.length === 1) as Chunk;
      await this.deliverDeadLetter(chunk, err);
      return;
    }
    const halves = splitChunks(chunks);
    for (const half of halves) await this.deliver(half);
  }

  private async deliverDeadLetter(chunk: Chunk, err: unknown): Promise<void> {
    await this.withStore((session) =>
      inTransaction(session.conn, async () => {
        const applied = await appliedOffset(session.conn, this.record.id, chunk.partition);
        const message = chunk.messages[0];
        if (applied !== undefined && message.offset <= applied) return;
        await recordProgress(session.conn, this.record, {
          offsets: new Map([[chunk.partition, message.offset]]),
          watermarks: new Map([[chunk.partition, chunk.high]]),
          messages: 0,
          deadLetters: [deadLetter(message, err)],
        });
      }),
    );
  }

  private async apply(session: StoreSession, chunks: Chunk[]): Promise<void> {
    const { engine } = this.deps;
    await inTransaction(session.conn, async () => {
      // The offsets recorded in the store are checked inside the transaction, so
      // a message handed over twice (a redelivery, a restarted consumer racing
      // the old one) can never be applied twice.
      const offsets = new Map<number, bigint>();
      const times = new Map<number, number>();
      const watermarks = new Map<number, bigint>();
      const messages: KafkaMessage[] = [];
      for (const chunk of chunks) {
        const applied = await appliedOffset(session.conn, this.record.id, chunk.partition);
        const fresh = applied === undefined ? chunk.messages : chunk.messages.filter((m) => m.offset > applied);
        watermarks.set(chunk.partition, chunk.high);
        if (fresh.length === 0) continue;
        messages.push(...fresh);
        offsets.set(chunk.partition, fresh[fresh.length - 1].offset);
        times.set(chunk.partition, fresh[fresh.length - 1].timestamp);
      }
      if (messages.length === 0) return;
      const decoded = this.decode(messages);
      const deadLetters = [...decoded.deadLetters];
      let delivered = 0;
      for (const [stream, { messages: sources, rows }] of decoded.rows) {
        let batch = toBatch(stream, rows);
        const invalid = await engine.invalidRows(session.conn, stream, batch);
        if (invalid.size) {
          for (const [row, error] of invalid) deadLetters.push(deadLetter(sources[row], describeInvalidValue(error)));
          batch = toBatch(stream, rows.filter((_, i) => !invalid.has(i)));
        }
        delivered += await engine.ingest(session.conn, stream, [batch], { validated: true, fromTopic: true });
      }
      await recordProgress(session.conn, this.record, { offsets, times, watermarks, messages: delivered, deadLetters });
    });
  }

  private decode(messages: KafkaMessage[]): DecodedBatch {
    const decoded: DecodedBatch = { rows: new Map(), deadLetters: [] };
    // One stream for the whole batch unless each message's key names its own.
    const single = this.record.partitioned || messages.length === 0 ? undefined : this.decoderOrUndefined(messages[0]);
    for (const message of messages) {
      try {
        const decoder = single ?? this.decoderFor(message);
        let entry = decoded.rows.get(decoder.stream);
        if (!entry) decoded.rows.set(decoder.stream, (entry = { messages: [], rows: [] }));
        entry.rows.push(decoder.decode(message));
        entry.messages.push(message);
      } catch (err) {
        decoded.deadLetters.push(deadLetter(message, err));
      }
    }
    return decoded;
  }

  private decoderOrUndefined(message: KafkaMessage): MessageDecoder | undefined {
    try {
      return this.decoderFor(message);
    } catch {
      return undefined; // each message then says why, as a dead letter
    }
  }

  private decoderFor(message: KafkaMessage): MessageDecoder {
    const target = this.record.partitioned ? partitionedTarget(message) : this.record.stream;
    if (!target) throw new Error('message has no key naming its stream');
    const stream = this.deps.engine.stream(target.schema, target.name);
    if (!stream) throw new Error(`stream "${target.name}" does not exist`);
    const key = `${stream.key}`;
    let decoder = this.decoders.get(key);
    if (!decoder || decoder.stream !== stream) {
      decoder = new MessageDecoder(stream, this.record.format, this.record);
      this.decoders.set(key, decoder);
    }
    return decoder;
  }

  private async withStore<T>(work: (session: StoreSession) => Promise<T>): Promise<T> {
    this.storeLine ??= new BackgroundSession(this.deps.store, `sluice: Kafka consumer ${this.record.id}`);
    return this.storeLine.run(work);
  }
}

function partitionedTarget(message: KafkaMessage): { schema: string; name: string } | undefined {
  const key = message.key?.toString('utf8');
  if (!key) return undefined;
  const dot = key.indexOf('.');
  return dot > 0 ? { schema: key.slice(0, dot), name: key.slice(dot + 1) } : { schema: 'public', name: key };
}

function toBatch(stream: Stream, rows: Value[][]): RowBatch {
  const arrival = new Date().toISOString();
  const arrivalPosition = stream.position('arrival_timestamp');
  const columns: Value[][] = stream.columns.map(() => new Array(rows.length));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    for (let c = 0; c < columns.length; c++) columns[c][r] = c === arrivalPosition && row[c] === null ? arrival : row[c];
  }
  return { length: rows.length, columns };
}

/**
 * Whether an error was caused by the batch's data (a value, a view's
 * expression, a key too large to index…) rather than by the store being
 * unavailable: only the latter is worth retrying as is.
 */
function isDataError(err: unknown): boolean {
  return err instanceof SqlError && !retryableClasses.test(err.code);
}

/** Connection exceptions, insufficient resources, operator intervention, transaction rollbacks, internal errors. */
const retryableClasses = /^(08|53|57|58|40|XX)/;

function deadLetter(message: KafkaMessage, err: unknown): DeadLetter {
  const error = typeof err === 'string' ? err : err instanceof SqlError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  return { partition: message.partition, offset: message.offset, key: message.key, value: message.value, error };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
