import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Engine } from '../../engine/engine.ts';
import type { Stream } from '../../engine/stream.ts';
import { SqlError, SqlState } from '../../engine/errors.ts';
import type { KafkaConsumerSpec, KafkaSources, TopicWatermark } from '../../engine/sources.ts';
import { inTransaction, withStoreSession, type ServingStore, type StoreConnection } from '../../engine/store.ts';
import { bootstrapKafkaCatalog, deactivateConsumer, loadConsumers, relationName, resetOffsets, saveConsumer, saveRateLimit, type ConsumerRecord } from './catalog.ts';
import { qualifiedName } from '../../engine/sql-text.ts';
import type { RateLimit } from './rate-limiter.ts';
import { TopicNotFoundError, type KafkaClient } from './client.ts';
import { KafkaSource } from './kafka-source.ts';
import { instanceId, outboxClusters } from './outbox.ts';
import { KafkaSinkWriter } from './sink-writer.ts';
import { AlertWatcher } from './alerts.ts';

export type KafkaClientFactory = (brokers: string[]) => KafkaClient;

/**
 * pipeline_kafka: the brokers, the running consumers, and their restart with
 * the server. Consumers run in the background; each takes its turn on the
 * serving store per batch.
 */
export class KafkaConnector implements KafkaSources {
  private readonly sources = new Map<number, KafkaSource>();
  private readonly clients = new Map<string, KafkaClient>();
  private brokers: string[] = [];
  private sinks: KafkaSinkWriter | undefined;
  private alerts: AlertWatcher | undefined;
  private readonly groupSuffix = randomBytes(6).toString('hex');

  constructor(
    private readonly store: ServingStore,
    private readonly engine: Engine,
    private readonly createClient: KafkaClientFactory,
    private readonly log: Logger,
  ) {}

  /** Creates the catalog if needed, restarts every active consumer and the relays of messages still waiting for Kafka. */
  async start(): Promise<void> {
    const { consumers, instance, pending } = await withStoreSession(this.store, async (session) => {
      await bootstrapKafkaCatalog(session.conn);
      this.brokers = (await session.conn.query('SELECT host FROM pipeline_kafka.brokers ORDER BY host')).rows.map(([h]) => h as string);
      return { consumers: await loadConsumers(session.conn), instance: await instanceId(session.conn), pending: await outboxClusters(session.conn) };
    });
    this.sinks = new KafkaSinkWriter({ store: this.store, clientFor: (cluster) => this.clientFor(cluster || null), log: this.log, instance });
    this.engine.sinks = this.sinks;
    for (const cluster of pending) this.sinks.relay(cluster);
    for (const record of consumers) this.launch(record);
    if (consumers.length) this.log.info({ consumers: consumers.length }, 'Kafka consumers restarted');
    this.alerts = new AlertWatcher(this.store, this.log);
    this.alerts.start();
  }

  async addBroker(conn: StoreConnection, host: string): Promise<void> {
    await conn.query('INSERT INTO pipeline_kafka.brokers (host) VALUES ($1) ON CONFLICT DO NOTHING', [host]);
    if (!this.brokers.includes(host)) this.brokers = [...this.brokers, host].sort();
  }

  async removeBroker(conn: StoreConnection, host: string): Promise<void> {
    const result = await conn.query('DELETE FROM pipeline_kafka.brokers WHERE host = $1', [host]);
    if (result.command === 'DELETE 0') throw new SqlError(SqlState.undefinedObject, `broker "${host}" was not added`);
    this.brokers = this.brokers.filter((b) => b !== host);
  }

  async consumeBegin(conn: StoreConnection, spec: KafkaConsumerSpec): Promise<void> {
    const client = this.clientFor(spec.brokers);
    try {
      await client.partitions(spec.topic);
    } catch (err) {
      throw kafkaError(err, spec.topic, this.brokerList(spec.brokers));
    }
    const record = await saveConsumer(conn, spec, spec.stream === undefined, false);
    await this.sources.get(record.id)?.stop();
    this.launch(record);
  }

  async consumeBeginAll(conn: StoreConnection): Promise<number> {
    await conn.query('UPDATE pipeline_kafka.consumers SET active = true WHERE NOT active');
    let started = 0;
    for (const record of await loadConsumers(conn)) {
      if (this.sources.has(record.id)) continue;
      this.launch(record);
      started++;
    }
    return started;
  }

  async consumeEnd(conn: StoreConnection, topic?: string, stream?: { schema: string; name: string }, partitioned = false): Promise<number> {
    let stopped = 0;
    for (const source of [...this.sources.values()]) {
      const record = source.record;
      const matches = topic === undefined || (record.topic === topic && record.partitioned === partitioned && (partitioned || relationName(record.stream) === relationName(stream)));
      if (!matches) continue;
      await source.stop();
      this.sources.delete(record.id);
      await deactivateConsumer(conn, record.id);
      stopped++;
    }
    if (topic !== undefined && stopped === 0) {
      throw new SqlError(SqlState.undefinedObject, `there is no consumer of topic "${topic}"${stream ? ` into "${stream.name}"` : ''}`);
    }
    return stopped;
  }

  async replay(conn: StoreConnection, topic: string, stream: { schema: string; name: string }, from: { offset?: bigint; time?: Date }, rebuild: boolean): Promise<bigint> {
    if (conn.transactionStatus !== 'I') throw new SqlError(SqlState.activeSqlTransaction, 'pipeline_kafka.replay cannot run inside a transaction block');
    const sources = [...this.sources.values()].filter((s) => s.record.topic === topic && !s.record.partitioned && relationName(s.record.stream) === relationName(stream));
    if (sources.length === 0) throw new SqlError(SqlState.undefinedObject, `there is no consumer of topic "${topic}" into "${stream.name}"`, { hint: 'Start one with pipeline_kafka.consume_begin.' });
    const target = this.engine.stream(stream.schema, stream.name);
    // Views below a transform are not rebuilt: the replay does not go through it (active, it is refused; inactive, it passes nothing).
    const fed = rebuild && target ? this.engine.fedBy(target, false) : { views: [], transforms: [] };
    const emitting = fed.transforms.filter((t) => t.active);
    if (emitting.length) {
      // A rebuild must not send again what transforms already wrote to their topics and streams.
      throw new SqlError(SqlState.featureNotSupported, `replay with rebuild would send again what transform ${emitting.map((t) => t.name).join(', ')} already wrote`, {
        hint: 'Deactivate it for the replay (SELECT pipelinedb.deactivate(…)), or replay without rebuild.',
      });
    }
    const inactive = fed.views.filter((v) => !v.active);
    if (inactive.length) {
      // Emptied and never filled again: a deactivated view ignores what the replay brings.
      throw new SqlError(SqlState.featureNotSupported, `replay with rebuild would empty ${inactive.map((v) => v.name).join(', ')}, which is deactivated and would not be filled again`, {
        hint: 'Activate it first (SELECT pipelinedb.activate(…)), or replay without rebuild.',
      });
    }
    const starts = new Map<KafkaSource, Map<number, bigint>>();
    let toRead = 0n;
    for (const source of sources) {
      const client = this.clientFor(source.record.brokers);
      const marks = await client.watermarks(topic).catch((err) => { throw kafkaError(err, topic, this.brokerList(source.record.brokers)); });
      const gone = from.offset === undefined ? undefined : marks.find((m) => from.offset! < m.low);
      if (rebuild && gone) {
        // Rebuilt from later than asked, the views would be silently short of what retention removed.
        throw new SqlError(SqlState.invalidParameterValue, `topic "${topic}" no longer holds offset ${from.offset} (partition ${gone.partition} starts at ${gone.low}: retention removed the rest)`, {
          hint: `Replay from offset ${gone.low} or later, knowing the views will lack the messages before it.`,
        });
      }
      const next = from.time
        ? await client.offsetsAtTime(topic, from.time.getTime())
        : new Map(marks.map((m) => [m.partition, from.offset! < m.low ? m.low : from.offset! > m.high ? m.high : from.offset!]));
      for (const m of marks) toRead += m.high - (next.get(m.partition) ?? m.high);
      starts.set(source, next);
    }
    for (const source of sources) {
      await source.stop();
      this.sources.delete(source.id);
    }
    try {
      await inTransaction(conn, async () => {
        for (const view of fed.views) await conn.exec(`TRUNCATE ${qualifiedName(view.plan.schema, view.plan.mrel)}`);
        for (const [source, next] of starts) await resetOffsets(conn, source.id, next);
      });
    } finally {
      // Restarted either way: from the new offsets, or (the transaction failed) where they were.
      for (const source of sources) this.launch({ ...source.record, resetOffsets: false });
    }
    this.log.info({ topic, stream: relationName(stream), messages: String(toRead), rebuilt: fed.views.map((v) => v.name) }, 'Kafka replay started');
    return toRead;
  }

  async setRateLimit(conn: StoreConnection, topic: string, stream: { schema: string; name: string }, limit: RateLimit): Promise<void> {
    const ids = await saveRateLimit(conn, topic, stream, limit);
    if (ids.length === 0) throw new SqlError(SqlState.undefinedObject, `there is no consumer of topic "${topic}" into "${stream.name}"`, { hint: 'Start one with pipeline_kafka.consume_begin.' });
    for (const id of ids) this.sources.get(id)?.setRateLimit(limit);
  }

  async topicWatermarks(_conn: StoreConnection, topic: string, partition?: number): Promise<TopicWatermark[]> {
    try {
      const marks = await this.clientFor(null).watermarks(topic);
      return partition === undefined ? marks : marks.filter((m) => m.partition === partition);
    } catch (err) {
      throw kafkaError(err, topic, this.brokerList(null));
    }
  }

  async syncDeclaredStreams(conn: StoreConnection): Promise<void> {
    const wanted = new Map<string, Stream>();
    for (const stream of this.engine.allStreams()) {
      if (stream.kafkaOptions && this.engine.readersOf(stream).length) wanted.set(relationName(stream), stream);
    }
    for (const source of [...this.sources.values()]) {
      if (!source.record.declared || wanted.has(relationName(source.record.stream))) continue;
      await source.stop();
      this.sources.delete(source.id);
      await deactivateConsumer(conn, source.id);
    }
    for (const [relation, stream] of wanted) {
      const running = [...this.sources.values()].some((s) => s.record.declared && relationName(s.record.stream) === relation);
      if (running) continue;
      const record = await saveConsumer(conn, declaredSpec(stream), false, true);
      this.launch(record);
    }
  }

  async stop(): Promise<void> {
    await this.alerts?.stop();
    await Promise.all([...this.sources.values()].map((s) => s.stop()));
    this.sources.clear();
    await this.sinks?.stop();
    if (this.engine.sinks === this.sinks) this.engine.sinks = undefined;
    await Promise.all([...this.clients.values()].map((c) => c.close().catch(() => undefined)));
    this.clients.clear();
  }

  /** Starts a consumer in the background (it needs the store, which the caller may be holding). */
  private launch(record: ConsumerRecord): void {
    const client = this.clientFor(record.brokers);
    const source = new KafkaSource(record, { store: this.store, engine: this.engine, client, log: this.log, sinks: this.sinks, groupSuffix: this.groupSuffix });
    this.sources.set(record.id, source);
    void source.start().catch((err) => {
      this.log.warn({ err, consumer: record.id, topic: record.topic }, 'Kafka consumer could not start; retrying');
      source.restartAfter(err);
    });
  }

  private brokerList(brokers: string | null): string[] {
    const list = brokers ? brokers.split(',').map((b) => b.trim()).filter(Boolean) : this.brokers;
    if (list.length === 0) {
      throw new SqlError(SqlState.objectNotInPrerequisiteState, 'no Kafka brokers are configured', { hint: "Add one with SELECT pipeline_kafka.add_broker('host:9092')." });
    }
    return list;
  }

  private clientFor(brokers: string | null): KafkaClient {
    const list = this.brokerList(brokers);
    const key = list.join(',');
    let client = this.clients.get(key);
    if (!client) this.clients.set(key, (client = this.createClient(list)));
    return client;
  }
}

/** The consumer of a stream declared `SERVER kafka OPTIONS (…)`. */
function declaredSpec(stream: Stream): KafkaConsumerSpec {
  const o = stream.kafkaOptions ?? {};
  const number = (name: string, fallback: number) => (o[name] !== undefined ? Number(o[name]) : fallback);
  return {
    topic: o.topic,
    stream: { schema: stream.schema, name: stream.name },
    groupId: o.group_id ?? null,
    format: (o.format ?? 'json') as KafkaConsumerSpec['format'],
    delimiter: o.delimiter ?? null,
    quote: o.quote ?? null,
    escape: o.escape ?? null,
    batchSize: number('batchsize', 10000),
    maxBytes: number('maxbytes', 32_000_000),
    parallelism: number('parallelism', 1),
    timeoutMs: number('timeout', 250),
    startOffset: o.start_offset !== undefined ? BigInt(o.start_offset) : null,
    brokers: o.brokers ?? null,
  };
}

function kafkaError(err: unknown, topic: string, brokers: string[]): SqlError {
  if (err instanceof SqlError) return err;
  if (err instanceof TopicNotFoundError) {
    return new SqlError(SqlState.undefinedObject, `Kafka topic "${topic}" does not exist on ${brokers.join(', ')}`, {
      hint: 'Create the topic first (e.g. kafka-topics.sh --create), then call consume_begin again.',
    });
  }
  return new SqlError(SqlState.connectionFailure, `could not reach Kafka at ${brokers.join(', ')}: ${(err as Error).message}`, {
    hint: 'Check that the brokers are running and reachable, or add the right one with pipeline_kafka.add_broker.',
  });
}
