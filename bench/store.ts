/**
 * The serving store, old default against new, in one run: PGlite (one
 * in-process backend shared by everyone; `--store pglite`) and the PostgreSQL
 * server Sluice manages (the default); for COPY and INSERT also what a user
 * would write instead on PostgreSQL alone (`pg-trigger`: the same rows into a
 * table whose statement-level trigger upserts each summary from the transition
 * table). Runs are interleaved (pglite, managed, pg-trigger, pglite, …) and
 * each result reports min and median over the runs.
 *
 *   npm run bench:store                     # everything
 *   npm run bench:store -- copy insert      # some of: copy, insert, kafka, idle
 *   BENCH_RUNS=5 BENCH_ROWS=500000 npm run bench:store
 *
 * copy:   COPY … FROM STDIN of 1M rows (10,000 keys) into a stream feeding 1 and 10 views
 *         grouping by key with count/sum/avg/max
 * insert: 1,000-row INSERT statements into the same views
 * kafka:  a topic of JSON messages (8 partitions, 10,000 keys) consumed into one view
 * idle:   1-row INSERT latency (p50/p99/max) while another client holds a transaction
 *         open for 3 s
 *
 * CPU is reported per million rows for the Sluice process (this process: the server and
 * the benchmark's own client) and for PostgreSQL (postmaster and every backend, from /proc;
 * zero for PGlite, which runs inside the Sluice process).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pino } from 'pino';
import { KafkaConnector, createKafkaClient } from '../connectors/kafka/index.ts';
import { PgliteStore, openManagedStore, type ManagedPostgres } from '../connectors/postgres/index.ts';
import type { ServingStore } from '../engine/store.ts';
import { SluiceService } from '../sql/index.ts';
import { WireServer } from '../sql/wire/server.ts';
import { startKafka, type KafkaBroker } from '../test/support/kafka.ts';
import { prefillTopic, processTreeCpuSeconds, report } from './support.ts';

type Kind = 'pglite' | 'managed' | 'pg-trigger';
const stores: Kind[] = ['pglite', 'managed'];
const withPeer: Kind[] = ['pglite', 'managed', 'pg-trigger'];
const which = new Set(process.argv.slice(2));
const wants = (name: string) => which.size === 0 || which.has(name);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const rows = Number(process.env.BENCH_ROWS ?? 1_000_000);
const keys = 10_000;

interface Running {
  kind: Kind;
  port: number;
  client: pg.Client;
  postgresCpuSeconds(): number;
  stop(): Promise<void>;
}

async function start(kind: Kind, kafka?: KafkaBroker): Promise<Running> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sluice-bench-'));
  const log = pino({ level: 'silent' });
  let store: ServingStore;
  let server: ManagedPostgres | undefined;
  if (kind === 'pglite') store = await PgliteStore.open(dataDir);
  else ({ store, server } = await openManagedStore(dataDir, log));
  const service = await SluiceService.start(store, { log });
  let connector: KafkaConnector | undefined;
  if (kafka) {
    connector = new KafkaConnector(store, service.engine, createKafkaClient, log);
    service.kafka = connector;
    await connector.start();
  }
  const wire = new WireServer(service, log);
  const { port } = await wire.listen(0, '127.0.0.1');
  // The peer is PostgreSQL alone: the same server, reached straight on its socket.
  const client = kind === 'pg-trigger' ? new pg.Client({ host: path.join(dataDir, 'pg'), port: 5432, user: 'postgres', database: 'sluice' }) : new pg.Client({ host: '127.0.0.1', port, user: 'sluice', database: 'sluice' });
  await client.connect();
  return {
    kind,
    port,
    client,
    postgresCpuSeconds: () => (server ? processTreeCpuSeconds(server.pid) : 0),
    async stop() {
      await client.end();
      await wire.close();
      await connector?.stop();
      await service.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function createViews(running: Running, count: number): Promise<void> {
  const { client } = running;
  if (running.kind === 'pg-trigger') return createTriggerSummaries(client, count);
  await client.query('CREATE STREAM events (key text, n int4, x float8)');
  for (let i = 0; i < count; i++) await client.query(`CREATE VIEW v${i} AS SELECT key, count(*), sum(n), avg(x), max(x) FROM events GROUP BY key`);
}

/** The same summaries as a PostgreSQL user would keep them: a table, and a statement trigger per summary reading the transition table. */
async function createTriggerSummaries(client: pg.Client, count: number): Promise<void> {
  await client.query('CREATE TABLE events (key text, n int4, x float8)');
  for (let i = 0; i < count; i++) {
    await client.query(`CREATE TABLE v${i} (key text PRIMARY KEY, count int8, sum int8, x_sum float8, x_count int8, max float8)`);
    await client.query(`CREATE FUNCTION v${i}_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      INSERT INTO v${i} SELECT key, count(*), sum(n), sum(x), count(x), max(x) FROM new_rows GROUP BY key
      ON CONFLICT (key) DO UPDATE SET count = v${i}.count + EXCLUDED.count, sum = v${i}.sum + EXCLUDED.sum,
        x_sum = v${i}.x_sum + EXCLUDED.x_sum, x_count = v${i}.x_count + EXCLUDED.x_count, max = greatest(v${i}.max, EXCLUDED.max);
      RETURN NULL; END $$`);
    await client.query(`CREATE TRIGGER v${i}_apply AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION v${i}_apply()`);
  }
}

async function checkTotal(client: pg.Client, expected: number): Promise<void> {
  const n = Number((await client.query('SELECT sum(count)::int8 AS n FROM v0')).rows[0].n);
  if (n !== expected) throw new Error(`view counted ${n} of ${expected} rows`);
}

function copyChunks(total: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let start = 0; start < total; start += 10_000) {
    let text = '';
    for (let i = start; i < Math.min(total, start + 10_000); i++) text += `key_${(i * 7919) % keys}\t${i % 1000}\t${(i % 977) / 8}\n`;
    chunks.push(Buffer.from(text));
  }
  return chunks;
}

function insertStatements(total: number): string[] {
  const statements: string[] = [];
  for (let start = 0; start < total; start += 1000) {
    const values: string[] = [];
    for (let i = start; i < Math.min(total, start + 1000); i++) values.push(`('key_${(i * 7919) % keys}', ${i % 1000}, ${(i % 977) / 8})`);
    statements.push(`INSERT INTO events (key, n, x) VALUES ${values.join(', ')}`);
  }
  return statements;
}

interface Sample {
  seconds: number;
  sluiceCpu: number;
  postgresCpu: number;
}

/** Measures `work` on a fresh server: wall time, this process's CPU, PostgreSQL's CPU. */
async function measure(running: Running, work: () => Promise<void>): Promise<Sample> {
  const cpu = process.cpuUsage();
  const pgBefore = running.postgresCpuSeconds();
  const t0 = performance.now();
  await work();
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  return { seconds, sluiceCpu: (used.user + used.system) / 1e6, postgresCpu: running.postgresCpuSeconds() - pgBefore };
}

function summarize(samples: Sample[], count: number): Record<string, number> {
  const rates = samples.map((s) => count / s.seconds).sort((a, b) => a - b);
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const perMillion = 1e6 / count;
  return {
    rows_per_s_min: Math.round(rates[0]),
    rows_per_s_median: Math.round(median(rates)),
    sluice_cpu_s_per_1m: +(median(samples.map((s) => s.sluiceCpu)) * perMillion).toFixed(2),
    postgres_cpu_s_per_1m: +(median(samples.map((s) => s.postgresCpu)) * perMillion).toFixed(2),
  };
}

/** Runs `one(kind)` `runs` times for each store, interleaved, and reports both. */
async function compare(name: string, kinds: Kind[], extra: Record<string, unknown>, count: number, one: (kind: Kind) => Promise<Sample>): Promise<void> {
  const samples = new Map<Kind, Sample[]>(kinds.map((kind) => [kind, []]));
  for (let r = 0; r < runs; r++) for (const kind of kinds) samples.get(kind)!.push(await one(kind));
  for (const kind of kinds) report({ bench: name, store: kind, ...extra, rows: count, runs, ...summarize(samples.get(kind)!, count) });
}

async function copyRun(kind: Kind, views: number): Promise<Sample> {
  const running = await start(kind);
  await createViews(running, views);
  const chunks = copyChunks(rows);
  const sample = await measure(running, () => pipeline(Readable.from(chunks), running.client.query(copyFrom('COPY events (key, n, x) FROM STDIN'))));
  await checkTotal(running.client, rows);
  await running.stop();
  return sample;
}

async function insertRun(kind: Kind, views: number, total: number): Promise<Sample> {
  const running = await start(kind);
  await createViews(running, views);
  const statements = insertStatements(total);
  const sample = await measure(running, async () => {
    for (const sql of statements) await running.client.query(sql);
  });
  await checkTotal(running.client, total);
  await running.stop();
  return sample;
}

async function kafkaRun(kind: Kind, kafka: KafkaBroker, topic: string, total: number): Promise<Sample> {
  const running = await start(kind, kafka);
  const { client } = running;
  await client.query('CREATE FOREIGN TABLE clicks (uid text, page text, amount numeric, ts timestamptz) SERVER pipelinedb');
  await client.query('CREATE VIEW per_user AS SELECT uid, count(*), sum(amount) FROM clicks GROUP BY uid');
  await client.query(`SELECT pipeline_kafka.add_broker('${kafka.brokers}')`);
  const sample = await measure(running, async () => {
    await client.query(`SELECT pipeline_kafka.consume_begin('${topic}', 'clicks', format := 'json', parallelism := 8, start_offset := -2)`);
    for (;;) {
      const n = Number((await client.query('SELECT coalesce(sum(count), 0)::int8 AS n FROM per_user')).rows[0].n);
      if (n >= total) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  await running.stop();
  return sample;
}

async function idleRun(kind: Kind): Promise<void> {
  const running = await start(kind);
  await createViews(running, 1);
  const holder = new pg.Client({ host: '127.0.0.1', port: running.port, user: 'sluice', database: 'sluice' });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT 1');
  const holding = new Promise((r) => setTimeout(r, 3000)).then(() => holder.query('COMMIT'));
  const latencies: number[] = [];
  const until = performance.now() + 3000;
  let i = 0;
  while (performance.now() < until) {
    const t0 = performance.now();
    await running.client.query(`INSERT INTO events VALUES ('key_${i++ % keys}', 1, 1)`);
    latencies.push(performance.now() - t0);
  }
  await holding;
  await holder.end();
  latencies.sort((a, b) => a - b);
  const at = (p: number) => +latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))].toFixed(2);
  report({ bench: 'insert-while-a-transaction-is-open', store: kind, inserts: latencies.length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1) });
  await running.stop();
}

if (wants('copy')) {
  for (const views of [1, 10]) await compare('copy', withPeer, { views, keys }, rows, (kind) => copyRun(kind, views));
}
if (wants('insert')) {
  await compare('insert', withPeer, { views: 1, keys, rows_per_statement: 1000 }, Math.min(rows, 200_000), (kind) => insertRun(kind, 1, Math.min(rows, 200_000)));
  await compare('insert', withPeer, { views: 10, keys, rows_per_statement: 1000 }, Math.min(rows, 50_000), (kind) => insertRun(kind, 10, Math.min(rows, 50_000)));
}
if (wants('kafka')) {
  const kafka = await startKafka();
  const client = new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'bench_store', numPartitions: 8 }], waitForLeaders: true });
  const producer = client.producer();
  await producer.connect();
  const total = Math.min(rows, 500_000);
  await prefillTopic(producer, 'bench_store', total, (i) => JSON.stringify({ uid: `user_${(i * 7919) % keys}`, page: `/p/${i % 977}`, amount: (i % 1000) / 10, ts: '2026-11-21T10:00:00.000Z' }));
  await compare('kafka-json', stores, { views: 1, keys, partitions: 8 }, total, (kind) => kafkaRun(kind, kafka, 'bench_store', total));
  await producer.disconnect();
  await admin.disconnect();
  await kafka.stop({ removeData: true });
}
if (wants('idle')) for (const kind of stores) await idleRun(kind);
