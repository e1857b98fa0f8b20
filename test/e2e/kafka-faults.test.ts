import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKafka, type KafkaBroker } from '../support/kafka.ts';
import { SluiceProcess } from '../support/sluice-process.ts';
import { tempDataDir } from '../support/sluice.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Exactly once across crashes and outages: Sluice runs as its own process
 * (the `sluice` command) and is killed with SIGKILL at random moments while
 * it consumes; the broker is killed and restarted under it. The view must end
 * with exactly the totals of the messages produced.
 */
async function totals(sluice: SluiceProcess): Promise<{ n: number; qty: number }> {
  const row = (await sluice.query('SELECT coalesce(sum(count), 0)::int8 AS n, coalesce(sum(qty), 0)::int8 AS qty FROM totals')).rows[0];
  return { n: Number(row.n), qty: Number(row.qty) };
}

function message(i: number): { key: string; value: string } {
  return { key: String(i), value: JSON.stringify({ city: `city${i % 13}`, qty: i % 7 }) };
}

function expectedQty(count: number): number {
  let sum = 0;
  for (let i = 0; i < count; i++) sum += i % 7;
  return sum;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('exactly once across crashes and broker outages', () => {
  let kafka: KafkaBroker;
  let producer: Producer;
  let admin: ReturnType<Kafka['admin']>;

  beforeAll(async () => {
    kafka = await startKafka({ ignoreEnvBrokers: true });
    const client = new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING, retry: { retries: 20, maxRetryTime: 2000 } });
    admin = client.admin();
    await admin.connect();
    // Idempotent, so a retried send after a broker failure cannot put a message in the topic twice.
    producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
  }, 180_000);

  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
    await kafka?.stop({ removeData: true });
  });

  async function setUp(sluice: SluiceProcess, topic: string): Promise<void> {
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
    await sluice.query('CREATE FOREIGN TABLE events (city text, qty int) SERVER pipelinedb');
    await sluice.query('CREATE VIEW totals AS SELECT city, count(*), sum(qty) AS qty FROM events GROUP BY city');
    await sluice.query(`SELECT pipeline_kafka.add_broker('${kafka.brokers}')`);
    await sluice.query(`SELECT pipeline_kafka.consume_begin('${topic}', 'events', format := 'json', batchsize := 250, start_offset := -2)`);
  }

  it('counts every message exactly once when Sluice is killed with SIGKILL at random points', async () => {
    const dataDir = tempDataDir();
    const sluice = new SluiceProcess(dataDir);
    await sluice.start();
    await setUp(sluice, 'crashy');
    const total = 12_000;
    const producing = (async () => {
      for (let i = 0; i < total; i += 400) {
        await producer.send({ topic: 'crashy', messages: Array.from({ length: 400 }, (_, j) => message(i + j)) });
        await sleep(60);
      }
    })();
    let seed = 7;
    for (let crash = 0; crash < 4; crash++) {
      seed = (seed * 48271) % 2147483647;
      await sleep(300 + (seed % 900));
      sluice.kill();
      await sluice.start();
    }
    await producing;
    const counted = await waitFor(() => totals(sluice), (t) => t.n >= total, 90_000, 'all messages counted');
    await sleep(1000);
    expect(await totals(sluice)).toEqual({ n: total, qty: expectedQty(total) });
    expect(counted.n).toBe(total);
    await sluice.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 240_000);

  it('loses nothing when the broker dies mid-stream, or is down when Sluice starts', async () => {
    const dataDir = tempDataDir();
    const sluice = new SluiceProcess(dataDir);
    await sluice.start();
    await setUp(sluice, 'outage');
    const first = 3000;
    for (let i = 0; i < first; i += 500) await producer.send({ topic: 'outage', messages: Array.from({ length: 500 }, (_, j) => message(i + j)) });
    // The broker dies while the consumer is (probably) still working through the messages.
    kafka.kill();
    await sleep(2000);
    await kafka.restart();
    await waitFor(() => totals(sluice), (t) => t.n >= first, 90_000, 'messages after the broker came back');
    // Now Sluice restarts while the broker is down: it must start anyway and catch up later.
    await kafka.stop();
    await sluice.stop();
    await sluice.start();
    expect((await sluice.query('SELECT 1 AS up')).rows).toEqual([{ up: 1 }]);
    // The source says it waits for its broker, and why.
    const waiting = await waitFor(
      () => sluice.query("SELECT state, last_error, last_error_at IS NOT NULL AS dated FROM pipeline_kafka.sources WHERE topic = 'outage'"),
      (r) => r.rows[0]?.state === 'retrying',
      60_000,
      'the source to report retrying while its broker is down',
    );
    expect(waiting.rows[0]).toMatchObject({ dated: true, last_error: expect.any(String) });
    await kafka.restart();
    const second = 2000;
    for (let i = first; i < first + second; i += 500) await producer.send({ topic: 'outage', messages: Array.from({ length: 500 }, (_, j) => message(i + j)) });
    await waitFor(() => totals(sluice), (t) => t.n >= first + second, 90_000, 'messages produced while Sluice was reconnecting');
    await sleep(1000);
    expect(await totals(sluice)).toEqual({ n: first + second, qty: expectedQty(first + second) });
    const running = await sluice.query("SELECT state, lag::int, messages::int FROM pipeline_kafka.sources WHERE topic = 'outage'");
    expect(running.rows).toEqual([{ state: 'running', lag: 0, messages: expect.any(Number) }]);
    await sluice.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 240_000);

  it('counts every message exactly once when the managed PostgreSQL is killed with SIGKILL mid-stream; Sluice restarts it', async () => {
    const dataDir = tempDataDir();
    const sluice = new SluiceProcess(dataDir);
    await sluice.start();
    await setUp(sluice, 'store_crash');
    const total = 8000;
    const producing = (async () => {
      for (let i = 0; i < total; i += 400) {
        await producer.send({ topic: 'store_crash', messages: Array.from({ length: 400 }, (_, j) => message(i + j)) });
        await sleep(50);
      }
    })();
    // A client in the middle of a statement when the server dies gets an error, never a hang.
    const client = new pg.Client({ host: '127.0.0.1', port: sluice.port, user: 'sluice', database: 'sluice' });
    client.on('error', () => undefined);
    await client.connect();
    const sleeping = client.query('SELECT pg_sleep(30)').then(
      () => 'finished',
      (err: { code?: string; message: string }) => err.code ?? err.message,
    );
    await waitFor(() => totals(sluice), (t) => t.n > 0, 60_000, 'the first messages');
    await sleep(500);
    process.kill(postmasterPid(dataDir), 'SIGKILL');
    expect(await sleeping).toMatch(/^(08006|57P01|Connection terminated unexpectedly)$/);
    await producing;
    await waitFor(() => totals(sluice).catch(() => ({ n: -1, qty: -1 })), (t) => t.n >= total, 90_000, 'all messages counted after the store came back');
    await sleep(1000);
    expect(await totals(sluice)).toEqual({ n: total, qty: expectedQty(total) });
    await sluice.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 240_000);

  it('a client idle in a transaction holds up no Kafka consumption', async () => {
    const dataDir = tempDataDir();
    const sluice = new SluiceProcess(dataDir);
    await sluice.start();
    await setUp(sluice, 'idle_txn');
    const holder = new pg.Client({ host: '127.0.0.1', port: sluice.port, user: 'sluice', database: 'sluice' });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT count(*) FROM totals');
    const total = 3000;
    for (let i = 0; i < total; i += 500) await producer.send({ topic: 'idle_txn', messages: Array.from({ length: 500 }, (_, j) => message(i + j)) });
    await waitFor(() => totals(sluice), (t) => t.n >= total, 60_000, 'messages consumed while a transaction is open');
    expect((await holder.query('SELECT 1 AS still_open')).rows).toEqual([{ still_open: 1 }]);
    await holder.query('COMMIT');
    await holder.end();
    expect(await totals(sluice)).toEqual({ n: total, qty: expectedQty(total) });
    await sluice.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);
});

/** The managed PostgreSQL's postmaster, from its lock file in the data directory. */
function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
}
