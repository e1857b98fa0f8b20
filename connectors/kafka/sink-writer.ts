import type { Logger } from 'pino';
import type { KafkaSinks, KafkaSinkTarget } from '../../engine/sinks.ts';
import type { ServingStore, StoreConnection } from '../../engine/store.ts';
import type { KafkaClient } from './client.ts';
import { addToOutbox, checkMessageSize, payloadBytes } from './outbox.ts';
import { OutboxRelay } from './outbox-relay.ts';
import { SinkTopics } from './sink-topics.ts';

/** Outbox messages per cluster beyond which the sources feeding that cluster pause. */
const defaultBacklogLimit = Number(process.env.SLUICE_KAFKA_SINK_BACKLOG ?? 200_000);

export interface SinkDependencies {
  store: ServingStore;
  /** The client of a cluster ('' = the brokers added with add_broker). */
  clientFor: (cluster: string) => KafkaClient;
  log: Logger;
  instance: string;
}

/**
 * Kafka sinks: exactly-once targets go through the outbox and a relay per
 * cluster; at-least-once targets are produced to directly, before the
 * writing transaction commits.
 */
export class KafkaSinkWriter implements KafkaSinks {
  private readonly relays = new Map<string, OutboxRelay>();
  /** Topics of at-least-once sinks, per cluster (exactly-once ones are the relays'). */
  private readonly directTopics = new Map<string, SinkTopics>();

  constructor(
    private readonly deps: SinkDependencies,
    private readonly backlogLimit = defaultBacklogLimit,
  ) {}

  async write(conn: StoreConnection, target: KafkaSinkTarget, sql: string, params: readonly (string | null)[]): Promise<number> {
    const cluster = target.brokers ?? '';
    if (target.delivery === 'exactly_once') {
      const count = await addToOutbox(conn, { cluster, topic: target.topic, partition: target.partition }, sql, params);
      if (count) this.relay(cluster).notify(count);
      return count;
    }
    const rows = (await conn.query(sql, params)).rows;
    if (rows.length === 0) return 0;
    const messages = rows.map(([key, value]) => ({
      topic: target.topic,
      partition: target.partition,
      key: key === null ? null : Buffer.from(key),
      value: value === null ? null : Buffer.from(value),
    }));
    checkMessageSize(target.topic, messages.reduce((largest, m) => Math.max(largest, payloadBytes(m)), 0));
    const client = this.deps.clientFor(cluster);
    const topics = this.directTopicsOf(cluster);
    if (!topics.allReady([target.topic])) await topics.prepare(client, conn, [target.topic]);
    const producer = await client.producer();
    try {
      await producer.send(messages);
    } catch (err) {
      topics.forget();
      throw err;
    }
    return rows.length;
  }

  private directTopicsOf(cluster: string): SinkTopics {
    let topics = this.directTopics.get(cluster);
    if (!topics) this.directTopics.set(cluster, (topics = new SinkTopics(cluster)));
    return topics;
  }

  /** Starts the relay of a cluster (it may have messages left from before a restart). */
  relay(cluster: string): OutboxRelay {
    let relay = this.relays.get(cluster);
    if (!relay) {
      relay = new OutboxRelay(cluster, { store: this.deps.store, client: () => this.deps.clientFor(cluster), log: this.deps.log, instance: this.deps.instance });
      this.relays.set(cluster, relay);
      relay.start();
    }
    return relay;
  }

  /** Waits while any of these targets' clusters has more waiting than the limit (a slow or unreachable cluster). */
  async waitForRoom(targets: readonly KafkaSinkTarget[]): Promise<void> {
    for (const target of targets) {
      if (target.delivery !== 'exactly_once') continue;
      await this.relays.get(target.brokers ?? '')?.waitForRoom(this.backlogLimit);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.relays.values()].map((r) => r.stop()));
    this.relays.clear();
  }
}
