/**
 * Kafka source benchmark. JSON lines on stdout.
 *
 *   npm run bench:kafka            # 1,000,000 messages; BENCH_MESSAGES to change
 *   SLUICE_KAFKA_CLIENT=platformatic npm run bench:kafka   # with @platformatic/kafka
 *
 * throughput: a topic pre-filled with ~120-byte JSON messages over 8
 *             partitions, consumed into a view grouping 10,000 keys:
 *             messages/s and CPU seconds of the Sluice process.
 * latency:    messages produced at a steady 20,000/s; the time from a
 *             produce call to the view showing it, p50/p99.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import { startKafka } from '../test/support/kafka.ts';
import { startSluice } from '../test/support/sluice.ts';
import { prefillTopic, report } from './support.ts';

const total = Number(process.env.BENCH_MESSAGES ?? 1_000_000);
/** The client library Sluice consumes with (see createKafkaClient). */
const clientName = process.env.SLUICE_KAFKA_CLIENT ?? 'kafkajs';

function message(i: number): string {
  // ~120 bytes: a few strings, numbers and a timestamp.
  return JSON.stringify({ uid: `user_${i % 10_000}`, page: `/products/${i % 977}`, country: 'FR', amount: (i % 1000) / 10, ts: '2026-11-21T10:00:00.000Z' });
}

const kafka = await startKafka();
const client = new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
const admin = client.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic: 'bench', numPartitions: 8 }, { topic: 'steady', numPartitions: 8 }], waitForLeaders: true });
const producer = client.producer();
await producer.connect();

const prefillSeconds = await prefillTopic(producer, 'bench', total, message);
let t0 = performance.now();
report({ bench: 'kafka-prefill', messages: total, seconds: prefillSeconds, bytes_per_message: message(12345).length });

const sluice = await startSluice();
const sql = await sluice.client();
await sql.query('CREATE FOREIGN TABLE clicks (uid text, page text, country text, amount numeric, ts timestamptz) SERVER pipelinedb');
await sql.query('CREATE VIEW per_user AS SELECT uid, count(*), sum(amount) FROM clicks GROUP BY uid');
await sql.query(`SELECT pipeline_kafka.add_broker('${kafka.brokers}')`);

const cpu = process.cpuUsage();
t0 = performance.now();
await sql.query(`SELECT pipeline_kafka.consume_begin('bench', 'clicks', format := 'json', parallelism := 8, start_offset := -2)`);
for (;;) {
  const n = Number((await sql.query('SELECT coalesce(sum(count), 0)::int8 AS n FROM per_user')).rows[0].n);
  if (n >= total) break;
  await new Promise((r) => setTimeout(r, 100));
}
const seconds = (performance.now() - t0) / 1000;
const used = process.cpuUsage(cpu);
report({
  bench: 'kafka-consume',
  client: clientName,
  messages: total,
  partitions: 8,
  keys: 10_000,
  seconds: +seconds.toFixed(2),
  messages_per_s: Math.round(total / seconds),
  cpu_s: +((used.user + used.system) / 1e6).toFixed(2),
  note: 'CPU of the whole process (Sluice and the polling client; the broker is a separate JVM)',
});

// Steady 20,000 messages/s for 10 s; each 20 ms tick sends 400 messages and remembers when.
// A one-row view over the same stream tells cheaply how far the consumer has come.
await sql.query('CREATE VIEW progress AS SELECT count(*) AS n FROM clicks');
await sql.query(`SELECT pipeline_kafka.consume_begin('steady', 'clicks', format := 'json', parallelism := 8, start_offset := -1)`);
await new Promise((r) => setTimeout(r, 2000));
const seen = async () => Number((await sql.query('SELECT coalesce(max(n), 0)::int8 AS n FROM progress')).rows[0].n);
const base = await seen();
const ticks: { sentAt: number; cumulative: number }[] = [];
const latencies: number[] = [];
let produced = 0;
let polling = true;
const poller = (async () => {
  let next = 0;
  while (polling || next < ticks.length) {
    const n = (await seen()) - base;
    const now = performance.now();
    while (next < ticks.length && ticks[next].cumulative <= n) latencies.push(now - ticks[next++].sentAt);
    await new Promise((r) => setTimeout(r, 10));
  }
})();
// kcat produces from its own process, so producing does not compete with Sluice for this event loop.
const kcat = spawn('kcat', ['-P', '-b', kafka.brokers, '-t', 'steady', '-X', 'linger.ms=1'], { stdio: ['pipe', 'ignore', 'inherit'] });
const start = performance.now();
for (let tick = 0; tick < 500; tick++) {
  const due = start + tick * 20;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const sentAt = performance.now();
  let lines = '';
  for (let j = 0; j < 400; j++) lines += message(produced + j) + '\n';
  kcat.stdin.write(lines);
  produced += 400;
  ticks.push({ sentAt, cumulative: produced });
}
kcat.stdin.end();
polling = false;
await poller;
latencies.sort((a, b) => a - b);
const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]);
report({ bench: 'kafka-latency', client: clientName, producer: 'kcat (separate process)', rate_per_s: 20_000, seconds: 10, p50_ms: pct(0.5), p99_ms: pct(0.99), max_ms: pct(1) });

await producer.disconnect();
await admin.disconnect();
await sluice.stop({ removeData: true });
await kafka.stop({ removeData: true });
process.exit(0);
