import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { BackgroundSession, type ServingStore, type StoreConnection } from '../../engine/store.ts';
import type { KafkaClient, TransactionalProducer } from './client.ts';
import { claimMessages, countDelivered, deleteClaim, maxMessageBytes, outboxBacklog, payloadBytes, recordSinkState, setAsideOversized, settleClaims } from './outbox.ts';
import { SinkTopics } from './sink-topics.ts';

/** Where each relay records, as a consumer group's committed offset, the last claim it produced. */
export const progressTopic = 'sluice.sink.progress';

/** Messages per Kafka transaction. */
const claimSize = 20_000;
const idlePollMs = 100;
/** While a relay keeps failing, a warning at most this often (the first failure always warns). */
const warnEveryMs = 60_000;

export interface RelayDependencies {
  store: ServingStore;
  /** The target cluster's client (resolved on each attempt: add_broker may change the brokers). */
  client: () => KafkaClient;
  log: Logger;
  /** This Sluice's id (from the store): a restarted Sluice fences its predecessor's producer. */
  instance: string;
}

/**
 * Produces a cluster's outbox messages exactly once. Each claim of messages
 * goes out in one Kafka transaction that also commits the claim's number as
 * a consumer-group offset; after a crash, that offset says which claims
 * reached Kafka (delete them) and which did not (send them again).
 */
export class OutboxRelay {
  /** Messages waiting (an estimate between refreshes): sources pause while it is above their limit. */
  backlog = 0;
  private lastClaim = 0n;
  private producer: TransactionalProducer | undefined;
  private storeLine: BackgroundSession | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly drainedWaiters = new Set<() => void>();
  private readonly id: string;
  private readonly topics: SinkTopics;
  private lastWarning = 0;

  constructor(
    readonly cluster: string,
    private readonly deps: RelayDependencies,
  ) {
    this.id = `sluice-${deps.instance}-${createHash('sha1').update(cluster).digest('hex').slice(0, 12)}`;
    this.topics = new SinkTopics(cluster);
  }

  start(): void {
    this.running ??= this.run();
  }

  /** New messages were written (maybe not committed yet). */
  notify(count: number): void {
    this.backlog += count;
    this.wake?.();
  }

  /** Resolves once the backlog is at most `limit` (or the relay stops). */
  async waitForRoom(limit: number): Promise<void> {
    while (this.backlog > limit && !this.stopped) {
      await new Promise<void>((resolve) => {
        this.drainedWaiters.add(resolve);
        setTimeout(resolve, 1000);
      });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    await this.producer?.close().catch(() => undefined);
    await this.storeLine?.close();
  }

  private async run(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.recover();
        if (attempt === 0) await this.report('running');
        while (!this.stopped) {
          const moved = await this.relayOnce();
          if (attempt > 0) {
            this.deps.log.info({ cluster: this.label, backlog: this.backlog }, 'Kafka sink reached its cluster again');
            await this.report('running');
          }
          // Only a transaction that went through ends the backoff (connecting alone proves little).
          attempt = 0;
          if (!moved) await this.idle(idlePollMs);
        }
      } catch (err) {
        if (this.stopped) return;
        this.warnRateLimited(err, attempt);
        this.topics.forget();
        await this.producer?.close().catch(() => undefined);
        this.producer = undefined;
        await this.report('retrying', err);
        await this.withStore((conn) => this.refreshBacklog(conn)).catch(() => undefined);
        await this.idle(Math.min(10_000, 250 * 2 ** attempt), false);
      }
    }
  }

  private warnRateLimited(err: unknown, attempt: number): void {
    const now = Date.now();
    const warn = attempt === 0 || now - this.lastWarning >= warnEveryMs;
    if (warn) this.lastWarning = now;
    const log = warn ? this.deps.log.warn.bind(this.deps.log) : this.deps.log.debug.bind(this.deps.log);
    log({ err, cluster: this.label, backlog: this.backlog, attempt }, 'Kafka sink cannot produce; messages wait in the outbox');
  }

  /** Says in pipeline_kafka.sinks how the relay is doing. */
  private async report(state: 'running' | 'retrying', err?: unknown): Promise<void> {
    const message = err === undefined ? undefined : err instanceof Error ? err.message : String(err);
    await this.withStore((conn) => recordSinkState(conn, this.cluster, state, message)).catch(() => undefined);
  }

  private get label(): string {
    return this.cluster || '(add_broker)';
  }

  /** Fences any predecessor, then settles the claims it left by what Kafka says it committed. */
  private async recover(): Promise<void> {
    const client = this.deps.client();
    await client.ensureTopic(progressTopic, 1);
    this.producer = await client.transactionalProducer(this.id);
    this.lastClaim = (await client.committedOffset(this.id, progressTopic, 0)) ?? 0n;
    await this.withStore(async (conn) => {
      await settleClaims(conn, this.cluster, this.lastClaim);
      await this.refreshBacklog(conn);
    });
  }

  /** One claim through Kafka; false when there was nothing to send. */
  private async relayOnce(): Promise<boolean> {
    const claim = this.lastClaim + 1n;
    let messages = await this.withStore((conn) => claimMessages(conn, this.cluster, claim, claimSize));
    if (messages.length === 0) {
      this.backlog = 0;
      this.signalDrained();
      return false;
    }
    if (messages.some((m) => payloadBytes(m) > maxMessageBytes)) {
      const setAside = await this.withStore((conn) => setAsideOversized(conn, this.cluster, claim, maxMessageBytes));
      this.deps.log.warn({ cluster: this.label, messages: setAside, maxMessageBytes }, 'messages too large for Kafka moved to pipeline_kafka.dead_letters');
      messages = messages.filter((m) => payloadBytes(m) <= maxMessageBytes);
      if (messages.length === 0) return true;
    }
    const topics = messages.map((m) => m.topic);
    if (!this.topics.allReady(topics)) {
      const client = this.deps.client();
      await this.withStore((conn) => this.topics.prepare(client, conn, topics));
    }
    await (this.producer as TransactionalProducer).sendInTransaction(messages, { groupId: this.id, topic: progressTopic, offset: claim });
    this.lastClaim = claim;
    await this.withStore(async (conn) => {
      await deleteClaim(conn, this.cluster, claim);
      await countDelivered(conn, this.cluster, messages.length);
      if (messages.length === claimSize) await this.refreshBacklog(conn);
      else this.backlog = Math.max(0, this.backlog - messages.length);
    });
    this.signalDrained();
    return true;
  }

  private async refreshBacklog(conn: StoreConnection): Promise<void> {
    this.backlog = await outboxBacklog(conn, this.cluster);
  }

  private signalDrained(): void {
    for (const resolve of this.drainedWaiters) resolve();
    this.drainedWaiters.clear();
  }

  /** Waits `ms`, or less when the relay stops or (with `onMessages`) new messages arrive. */
  private idle(ms: number, onMessages = true): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = onMessages ? done : () => this.stopped && done();
    });
  }

  private async withStore<T>(work: (conn: StoreConnection) => Promise<T>): Promise<T> {
    this.storeLine ??= new BackgroundSession(this.deps.store, `sluice: Kafka sink relay ${this.id}`);
    return this.storeLine.run((session) => work(session.conn));
  }
}
