/**
 * Kafka ETL benchmark: topic → filter/reshape (a continuous transform) → topic, JSON in and JSON out.
 * JSON lines on stdout.
 *
 *   npm run bench:etl              # 500,000 messages; BENCH_MESSAGES to change
 *   BENCH_MODES=exactly_once npm run bench:etl              # one mode only (comma-separated list)
 *   BENCH_MAXBYTES=524288 npm run bench:etl                 # adds maxbytes '524288' to the source's options
 *   BENCH_STALL_MS=60000 npm run bench:etl                  # give up on a mode after this long without progress (120 s)
 *   SLUICE_COMPILE_EXPRESSIONS=off npm run bench:etl        # the store evaluates the transform (as before it compiled)
 *   SLUICE_LOG_LEVEL=warn npm run bench:etl                 # Sluice's own log lines (pino JSON) on stdout too
 *
 * A topic `etl.in` (8 partitions) is pre-filled once with ~105-byte JSON messages; 9 of every 10 have
 * country 'FR', so the transform's WHERE keeps exactly `expected` of them, known in advance. Each mode then
 * runs in its own fresh in-process Sluice (startSluice), with its own stream/view names and output topic:
 *
 *   at_least_once  the output stream is declared `delivery 'at_least_once'`: each batch is produced to
 *                  Kafka (idempotent producer, acks=all) before the batch's store transaction commits.
 *                  Done when the sum over the output topic's partitions of the end offset reaches
 *                  `expected`: without transactions every offset is one message. (kafkajs's
 *                  admin.fetchTopicOffsets asks for read_committed end offsets, i.e. each partition's
 *                  last stable offset; with no transactions on the topic that is the high watermark.)
 *   exactly_once   the default: each batch's output rows go into pipeline_kafka.outbox in the same store
 *                  transaction as the source offsets, and a relay produces them in Kafka transactions
 *                  (20,000 messages each) and deletes them from the outbox once committed. End offsets
 *                  do not count messages here (every transaction leaves a commit marker at one offset
 *                  of each partition it wrote), so "done" is:
 *                    1. the source offsets in pipeline_kafka.offsets reached the input topic's high
 *                       watermarks (read before the view was created; the topic is not written to
 *                       afterwards) — every input message is applied, so every output row is either in
 *                       the outbox or already in Kafka; and then
 *                    2. the outbox is empty — the relay deletes a claim only after its Kafka transaction
 *                       committed, so every output message is committed in the topic.
 *                  "Committed" is Kafka's commit point (EndTxn acknowledged: the transaction can no
 *                  longer abort). The broker writes the commit markers that make the messages visible
 *                  to read_committed consumers just after that, asynchronously: right at "done", a
 *                  partition's last stable offset can still be behind (seen: 0 of 9,000 visible in a
 *                  10,000-message run). So after the clock stops, `visible_after_ms` is how much longer
 *                  until the read_committed end offsets summed are >= `expected` and stop moving
 *                  (unchanged for 100 ms; nothing new starts once the outbox is empty). The exact
 *                  check is the read-back below.
 *                  (pipeline_kafka.consumer_lag is not used: it reads watermarks the source refreshes
 *                  from time to time, and has no rows at all before the first refresh — a sum of 0
 *                  there could mean "not started".)
 *
 * The clock runs from CREATE VIEW (which starts the consumer, the source being declared on SERVER kafka)
 * to "done". Reported: messages/s (input messages consumed / seconds), output messages/s, and CPU seconds of
 * this process (Sluice with its embedded PGlite store and Kafka clients, plus the 100 ms polling; the
 * broker is a separate JVM and not counted).
 *
 * After the clock stops, for both modes, the output topic is read back outside the timed part with a
 * kafkajs consumer in read_committed mode (its default): the number of messages, the number of distinct
 * `ts` values (every input message has its own ts, so distinct < count means duplicates), and a check of
 * each message's shape (key = uid, page upper-cased, amount doubled) — reported as verified_* fields.
 */
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import type pg from 'pg';
import { startKafka } from '../test/support/kafka.ts';
import { startSluice } from '../test/support/sluice.ts';
import { prefillTopic, report } from './support.ts';

const total = Number(process.env.BENCH_MESSAGES ?? 500_000);
const partitions = 8;
const inputTopic = 'etl.in';
/** Optional maxbytes option of the source stream (bytes fetched per partition per request). */
const maxBytes = process.env.BENCH_MAXBYTES;
const modes = (process.env.BENCH_MODES ?? 'at_least_once,exactly_once').split(',').map((m) => m.trim()) as ('at_least_once' | 'exactly_once')[];
for (const m of modes) if (m !== 'at_least_once' && m !== 'exactly_once') throw new Error(`BENCH_MODES: unknown mode '${m}'`);
/** No progress at all for this long: report what Sluice's catalog says and give up on the mode. */
const stallMs = Number(process.env.BENCH_STALL_MS ?? 120_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const baseTs = Date.parse('2026-11-21T10:00:00.000Z');
const kept = (i: number) => i % 10 !== 9;
function message(i: number): string {
  // ~105 bytes; every message has its own ts (one millisecond apart) so duplicates are detectable downstream.
  return JSON.stringify({
    uid: `user_${i % 10_000}`,
    page: `/products/${i % 977}`,
    country: kept(i) ? 'FR' : 'DE',
    amount: (i % 1000) / 10,
    ts: new Date(baseTs + i).toISOString(),
  });
}
let expected = 0;
for (let i = 0; i < total; i++) if (kept(i)) expected++;

const kafka = await startKafka();
const client = new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
const admin = client.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic: inputTopic, numPartitions: partitions }], waitForLeaders: true });
const producer = client.producer();
await producer.connect();

const prefillSeconds = await prefillTopic(producer, inputTopic, total, message);
let t0 = performance.now();
await producer.disconnect();
const inputHigh = new Map((await admin.fetchTopicOffsets(inputTopic)).map((o) => [o.partition, BigInt(o.high)]));
const inputCount = [...inputHigh.values()].reduce((a, b) => a + b, 0n);
if (inputCount !== BigInt(total)) throw new Error(`prefill: ${inputCount} messages in ${inputTopic}, expected ${total}`);
report({
  bench: 'etl-prefill',
  messages: total,
  partitions,
  seconds: prefillSeconds,
  bytes_per_message: message(12345).length,
  expected_output: expected,
});

/** Sum of the topic's read_committed end offsets (last stable offsets; kafkajs's admin default). */
async function outputEndSum(topic: string): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
}

/** Applied offset + 1 per partition of the input topic, from Sluice's catalog. */
async function appliedPositions(sql: pg.Client): Promise<Map<number, bigint>> {
  const rows = (
    await sql.query(`SELECT o.partition, o."offset" FROM pipeline_kafka.offsets o JOIN pipeline_kafka.consumers c ON c.id = o.consumer_id WHERE c.topic = $1`, [inputTopic])
  ).rows;
  return new Map(rows.map((r) => [Number(r.partition), BigInt(r.offset) + 1n]));
}

function allApplied(applied: Map<number, bigint>): boolean {
  for (const [partition, high] of inputHigh) if (high > 0n && (applied.get(partition) ?? 0n) < high) return false;
  return true;
}

const sum = (m: Map<number, bigint>) => [...m.values()].reduce((a, b) => a + b, 0n);

async function diagnostics(sql: pg.Client): Promise<Record<string, unknown>> {
  const q = async (text: string) => {
    try {
      return (await sql.query(text)).rows;
    } catch (err) {
      return `error: ${(err as Error).message}`;
    }
  };
  return {
    consumers: await q('SELECT id, topic, relation, active, messages, dead_letters FROM pipeline_kafka.consumers'),
    offsets: await q('SELECT * FROM pipeline_kafka.offsets ORDER BY consumer_id, partition'),
    outbox_backlog: await q('SELECT * FROM pipeline_kafka.outbox_backlog'),
    outbox_claimed: await q('SELECT claim, count(*) FROM pipeline_kafka.outbox WHERE claim IS NOT NULL GROUP BY claim'),
    dead_letters: await q('SELECT topic, partition, "offset", error FROM pipeline_kafka.dead_letters ORDER BY id LIMIT 5'),
  };
}

/** Reads the whole topic read_committed; counts messages and checks each one. */
async function verify(topic: string): Promise<Record<string, unknown>> {
  const consumer = client.consumer({ groupId: `bench-verify-${topic}-${Date.now()}`, readUncommitted: false, maxBytesPerPartition: 4 << 20 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let bad = 0;
  let firstBad: unknown;
  let sample: unknown;
  const stamps = new Set<string>();
  let last = performance.now();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        count++;
        const key = m.key?.toString();
        const v = JSON.parse(m.value?.toString() ?? 'null');
        sample ??= { key, value: v };
        stamps.add(v?.ts);
        const i = Date.parse(v?.ts) - baseTs;
        const ok =
          v && key === v.uid && Object.keys(v).sort().join() === 'amount,page,ts,uid' &&
          v.uid === `user_${i % 10_000}` && v.page === `/PRODUCTS/${i % 977}` && Number(v.amount) === ((i % 1000) / 10) * 2 && kept(i);
        if (!ok) {
          bad++;
          firstBad ??= { key, value: v };
        }
      }
      last = performance.now();
    },
  });
  const started = performance.now();
  // Stop 3 s after the last message once there are at least `expected` (a late duplicate would still show).
  while (!(count >= expected && performance.now() - last > 3000) && performance.now() - started < 300_000) await sleep(200);
  await consumer.disconnect();
  return {
    verified_messages: count,
    verified_distinct: stamps.size,
    verified_equal_expected: count === expected && stamps.size === expected && bad === 0,
    verified_bad: bad,
    ...(firstBad ? { first_bad: firstBad } : {}),
    sample,
  };
}

async function runMode(mode: 'at_least_once' | 'exactly_once'): Promise<void> {
  const suffix = mode === 'at_least_once' ? 'alo' : 'eo';
  const outTopic = `etl.out.${suffix}`;
  await admin.createTopics({ topics: [{ topic: outTopic, numPartitions: partitions }], waitForLeaders: true });

  const sluice = await startSluice();
  const sql = await sluice.client();
  try {
    await sql.query(`CREATE FOREIGN TABLE raw_in_${suffix} (uid text, page text, country text, amount numeric, ts text)
      SERVER kafka OPTIONS (brokers '${kafka.brokers}', topic '${inputTopic}', format 'json', start_offset '-2', parallelism '${partitions}'${maxBytes ? `, maxbytes '${maxBytes}'` : ''})`);
    await sql.query(`CREATE FOREIGN TABLE clean_out_${suffix} (uid text, page text, amount numeric, ts timestamptz)
      SERVER kafka OPTIONS (brokers '${kafka.brokers}', topic '${outTopic}', format 'json', key 'uid'${mode === 'at_least_once' ? ", delivery 'at_least_once'" : ''})`);

    const cpu = process.cpuUsage();
    t0 = performance.now();
    await sql.query(`CREATE VIEW clean_${suffix} WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('clean_out_${suffix}')) AS
      SELECT uid, upper(page), amount * 2, ts::timestamptz FROM raw_in_${suffix} WHERE country = 'FR'`);

    let consumedAt: number | undefined;
    let lastProgress = '';
    let lastChange = performance.now();
    for (;;) {
      const applied = await appliedPositions(sql);
      const high = await outputEndSum(outTopic);
      if (!consumedAt && allApplied(applied)) consumedAt = performance.now();
      if (mode === 'at_least_once') {
        if (high >= expected) break;
      } else if (consumedAt) {
        const pending = (await sql.query('SELECT EXISTS (SELECT FROM pipeline_kafka.outbox) AS pending')).rows[0].pending;
        if (!pending) break;
      }
      const progress = `${sum(applied)}/${high}`;
      if (progress !== lastProgress) {
        lastProgress = progress;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > stallMs) {
        report({
          bench: 'etl',
          mode,
          error: `no progress for ${stallMs / 1000} s`,
          after_s: +((performance.now() - t0) / 1000).toFixed(1),
          input_applied: Number(sum(applied)),
          output_end_offsets_sum: high,
          ...(await diagnostics(sql)),
        });
        throw new Error(`${mode}: stalled`);
      }
      await sleep(100);
    }
    const done = performance.now();
    const seconds = (done - t0) / 1000;
    const used = process.cpuUsage(cpu);
    // Visibility to read_committed readers (see the header): the end offsets reach `expected` and settle.
    let high = await outputEndSum(outTopic);
    for (let same = 0; same < 5 && performance.now() - done < 60_000; ) {
      await sleep(20);
      const now = await outputEndSum(outTopic);
      same = now === high && now >= expected ? same + 1 : 0;
      high = now;
    }
    const visibleAfterMs = Math.round(performance.now() - done - 100);
    const deadLetters = Number((await sql.query('SELECT count(*) AS n FROM pipeline_kafka.dead_letters')).rows[0].n);
    report({
      bench: 'etl',
      mode,
      evaluation: (await sql.query(`SELECT sluice.view_evaluation('clean_${suffix}') AS e`)).rows[0].e,
      messages_in: total,
      ...(maxBytes ? { source_maxbytes: Number(maxBytes) } : {}),
      messages_out_expected: expected,
      partitions,
      seconds: +seconds.toFixed(2),
      messages_per_s: Math.round(total / seconds),
      out_messages_per_s: Math.round(expected / seconds),
      cpu_s: +((used.user + used.system) / 1e6).toFixed(2),
      ...(consumedAt ? { input_applied_s: +((consumedAt - t0) / 1000).toFixed(2) } : {}),
      output_end_offsets_sum: high,
      ...(mode === 'exactly_once' ? { visible_after_ms: Math.max(0, visibleAfterMs), transaction_markers: high - expected } : {}),
      dead_letters: deadLetters,
      note: 'CPU of the whole process (Sluice, its PGlite store, its Kafka clients, the polling); the broker is a separate JVM',
    });
    report({ bench: 'etl-verify', mode, topic: outTopic, expected, ...(await verify(outTopic)) });
  } finally {
    const stopping = performance.now();
    await sluice.stop({ removeData: true });
    report({ bench: 'etl-stop', mode, sluice_stop_s: +((performance.now() - stopping) / 1000).toFixed(2) });
  }
}

let failed = false;
for (const mode of modes) {
  try {
    await runMode(mode);
  } catch (err) {
    failed = true;
    report({ bench: 'etl', mode, failed: String((err as Error)?.stack ?? err) });
  }
}

await admin.disconnect();
await kafka.stop({ removeData: true });
process.exit(failed ? 1 : 0);
