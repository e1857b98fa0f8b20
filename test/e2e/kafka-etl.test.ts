import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kcatConsume, kcatProduce, type ConsumedMessage } from '../support/kcat.ts';
import { startKafka, type KafkaBroker } from '../support/kafka.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { copyInto } from '../support/rows.ts';
import { SluiceProcess } from '../support/sluice-process.ts';
import { startSluice, tempDataDir, type RunningSluice } from '../support/sluice.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Micro-ETL between two real Kafka clusters (two broker processes): a city
 * cluster receiving raw events and a province cluster receiving the clean,
 * split and merged topics. What arrives is read back with kcat, as a
 * read-committed consumer of the output would see it.
 */

let city: KafkaBroker;
let province: KafkaBroker;

async function createTopics(broker: KafkaBroker, topics: { topic: string; partitions: number }[]): Promise<void> {
  const admin = new Kafka({ brokers: [broker.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: topics.map((t) => ({ topic: t.topic, numPartitions: t.partitions })), waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

interface RawEvent {
  app: string;
  event: string;
  uid: string | null;
  ts: string;
  payload: { city: string; amount: number };
}

const apps = ['pay', 'shop', 'chat'];
const events = ['order', 'refund', 'view'];

function rawEvent(i: number, cityName = 'a'): RawEvent {
  return {
    app: apps[i % 3],
    event: events[Math.floor(i / 3) % 3],
    uid: i % 10 === 9 ? null : `u${i}`,
    ts: String(1_700_000_000_000 + i * 1000),
    payload: { city: `city-${cityName}`, amount: i },
  };
}

/** Waits until a topic holds `count` messages, then gives them (more would be duplicates, which the caller checks). */
async function consumeAll(broker: KafkaBroker, topic: string, count: number, timeoutMs = 60_000): Promise<ConsumedMessage[]> {
  await waitFor(() => kcatConsume(broker.brokers, topic), (m) => m.length >= count, timeoutMs, `${count} messages in ${topic}`);
  // A little longer: a duplicate arriving late must be seen too.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return kcatConsume(broker.brokers, topic);
}

beforeAll(async () => {
  [city, province] = await Promise.all([startKafka({ ignoreEnvBrokers: true }), startKafka({ ignoreEnvBrokers: true })]);
}, 240_000);

afterAll(async () => {
  await Promise.all([city?.stop({ removeData: true }), province?.stop({ removeData: true })]);
});

describe('continuous transforms writing to Kafka', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    // PipelineDB's spellings (emit_tuple, produce_message) write to the cluster added here.
    await client.query(`SELECT pipeline_kafka.add_broker('${province.brokers}')`);
  });

  afterAll(async () => {
    await sluice?.stop({ removeData: true });
  });

  it('standardizes one cluster\'s raw topic into another cluster\'s topic, keyed by uid (insert_into_stream matches columns by position, as PipelineDB)', async () => {
    await createTopics(city, [{ topic: 'raw', partitions: 3 }]);
    await createTopics(province, [{ topic: 'events.std', partitions: 4 }]);
    await client.query(`CREATE FOREIGN TABLE raw_city_a (app text, event text, uid text, ts text, payload jsonb)
      SERVER kafka OPTIONS (brokers '${city.brokers}', topic 'raw', format 'json', start_offset '-2')`);
    await client.query(`CREATE FOREIGN TABLE std_events (app text, event text, uid text, ts timestamptz, city text)
      SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'events.std', format 'json', key 'uid')`);
    await client.query(`CREATE VIEW std_a WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('std_events')) AS
      SELECT app, event, uid, to_timestamp(ts::bigint / 1000), payload->>'city' FROM raw_city_a WHERE uid IS NOT NULL`);
    const raw = Array.from({ length: 200 }, (_, i) => rawEvent(i));
    await kcatProduce(city.brokers, 'raw', raw.map((e) => JSON.stringify(e)));

    const expected = raw.filter((e) => e.uid !== null);
    const got = await consumeAll(province, 'events.std', expected.length);
    expect(got).toHaveLength(expected.length);
    const byKey = new Map(got.map((m) => [m.key, JSON.parse(m.value as string)]));
    expect(byKey.size).toBe(expected.length);
    // PostgreSQL's JSON rendering of each column (timestamptz as to_json gives it).
    const rendered = (await client.query(`SELECT to_json(to_timestamp(1700000000)) AS ts`)).rows[0].ts;
    expect(byKey.get('u0')).toEqual({ app: 'pay', event: 'order', uid: 'u0', ts: rendered, city: 'city-a' });
    for (const e of expected) expect(byKey.get(e.uid)).toMatchObject({ app: e.app, event: e.event, uid: e.uid, city: 'city-a' });
  });

  it('splits a topic into three by event with emit_tuple, to the cluster added with add_broker', async () => {
    await createTopics(province, ['order', 'refund', 'view'].map((e) => ({ topic: `split.${e}`, partitions: 2 })));
    for (const e of events) {
      await client.query(`CREATE VIEW split_${e} WITH (action=transform, outputfunc=pipeline_kafka.emit_tuple('split.${e}', '-1', 'uid')) AS
        SELECT app, event, uid, payload->>'city' AS city FROM raw_city_a WHERE event = '${e}'`);
    }
    const raw = Array.from({ length: 150 }, (_, i) => rawEvent(1000 + i));
    await kcatProduce(city.brokers, 'raw', raw.map((e) => JSON.stringify(e)));
    for (const e of events) {
      const expected = raw.filter((r) => r.event === e);
      const got = await consumeAll(province, `split.${e}`, expected.length);
      expect(got.map((m) => JSON.parse(m.value as string).uid).sort()).toEqual(expected.map((r) => r.uid).sort());
      expect(got.every((m) => m.key === JSON.parse(m.value as string).uid || (m.key === null && JSON.parse(m.value as string).uid === null))).toBe(true);
    }
  });

  it('merges two topics from two clusters into one, in CSV', async () => {
    await createTopics(province, [{ topic: 'raw.b', partitions: 1 }, { topic: 'merged', partitions: 2 }]);
    await client.query(`CREATE FOREIGN TABLE raw_city_b (app text, event text, uid text, ts text, payload jsonb)
      SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'raw.b', format 'json', start_offset '-2')`);
    await client.query(`CREATE FOREIGN TABLE merged (uid text, city text, note text)
      SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'merged', format 'csv', key 'city || '':'' || uid')`);
    for (const source of ['raw_city_a', 'raw_city_b']) {
      await client.query(`CREATE VIEW merge_${source} WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('merged')) AS
        SELECT uid, payload->>'city' AS city, 'say "hi", ok' AS note FROM ${source} WHERE app = 'pay' AND uid IS NOT NULL`);
    }
    const fromA = Array.from({ length: 60 }, (_, i) => rawEvent(2000 + i, 'a'));
    const fromB = Array.from({ length: 60 }, (_, i) => rawEvent(3000 + i, 'b'));
    await kcatProduce(city.brokers, 'raw', fromA.map((e) => JSON.stringify(e)));
    await kcatProduce(province.brokers, 'raw.b', fromB.map((e) => JSON.stringify(e)));
    const expected = [...fromA, ...fromB].filter((e) => e.app === 'pay' && e.uid !== null);
    const got = await consumeAll(province, 'merged', expected.length);
    expect(got.map((m) => m.value).sort()).toEqual(expected.map((e) => `${e.uid},city-${e.payload.city.slice(5)},"say ""hi"", ok"`).sort());
    expect(got.map((m) => m.key).sort()).toEqual(expected.map((e) => `${e.payload.city}:${e.uid}`).sort());
  });

  it('puts a keyed message in the partition the Java client would (murmur2, as kcat\'s murmur2_random)', async () => {
    await createTopics(province, [{ topic: 'keyed.sluice', partitions: 7 }, { topic: 'keyed.kcat', partitions: 7 }]);
    await client.query(`CREATE FOREIGN TABLE keyed (k text, v int) SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'keyed.sluice', key 'k')`);
    const keys = Array.from({ length: 100 }, (_, i) => `key-${i * 7919}`);
    // Half by INSERT … SELECT, half by COPY: both produce to the topic.
    await client.query(`INSERT INTO keyed SELECT k, 1 FROM unnest($1::text[]) AS k`, [keys.slice(0, 50)]);
    await copyInto(client, 'keyed', 'k, v', keys.slice(50).map((k) => [k, '1']));
    await kcatProduce(province.brokers, 'keyed.kcat', keys.map((k) => `${k}\t1`), { keyDelimiter: '\t', partitioner: 'murmur2_random' });
    const fromSluice = await consumeAll(province, 'keyed.sluice', keys.length);
    const fromKcat = await consumeAll(province, 'keyed.kcat', keys.length);
    const partitions = (ms: ConsumedMessage[]) => Object.fromEntries(ms.map((m) => [m.key, m.partition]));
    expect(partitions(fromSluice)).toEqual(partitions(fromKcat));
    expect(new Set(fromSluice.map((m) => m.partition)).size).toBeGreaterThan(1);
  });

  it('sends a row whose cast fails to the dead letters and keeps going', async () => {
    await createTopics(city, [{ topic: 'raw.bad', partitions: 1 }]);
    await createTopics(province, [{ topic: 'clean', partitions: 1 }]);
    await client.query(`CREATE FOREIGN TABLE raw_bad (uid text, ts text) SERVER kafka OPTIONS (brokers '${city.brokers}', topic 'raw.bad', start_offset '-2')`);
    await client.query(`CREATE VIEW clean_t WITH (action=transform, outputfunc=pipeline_kafka.emit_tuple('clean')) AS
      SELECT uid, to_timestamp(ts::bigint / 1000) AS ts FROM raw_bad`);
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify({ uid: `u${i}`, ts: i === 13 ? 'not a number' : String(1_700_000_000_000 + i) }));
    await kcatProduce(city.brokers, 'raw.bad', lines);
    const got = await consumeAll(province, 'clean', 29);
    expect(got.map((m) => JSON.parse(m.value as string).uid).sort()).toEqual(lines.filter((_, i) => i !== 13).map((l) => JSON.parse(l).uid).sort());
    const dead = await client.query(`SELECT "offset", convert_from(value, 'UTF8') AS value, error FROM pipeline_kafka.dead_letters WHERE topic = 'raw.bad'`);
    expect(dead.rows).toHaveLength(1);
    expect(dead.rows[0]).toMatchObject({ offset: '13', value: lines[13] });
    expect(dead.rows[0].error).toMatch(/^22P02: invalid input syntax for type bigint/);
  });

  it('sets aside a row whose message would be too large for Kafka (54000), for both guarantees', async () => {
    await createTopics(city, [{ topic: 'sizes', partitions: 1 }]);
    await createTopics(province, [{ topic: 'sized.eo', partitions: 1 }, { topic: 'sized.alo', partitions: 1 }]);
    await client.query(`CREATE FOREIGN TABLE sizes (n int) SERVER kafka OPTIONS (brokers '${city.brokers}', topic 'sizes', start_offset '-2')`);
    await client.query(`CREATE FOREIGN TABLE sized_alo (n int, pad text) SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'sized.alo', delivery 'at_least_once')`);
    await client.query(`CREATE VIEW sized_eo WITH (action=transform, outputfunc=pipeline_kafka.emit_tuple('sized.eo')) AS SELECT n, repeat('x', n) AS pad FROM sizes`);
    await client.query(`CREATE VIEW sized_alo_t WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('sized_alo')) AS SELECT n, repeat('x', n) AS pad FROM sizes`);
    await kcatProduce(city.brokers, 'sizes', ['{"n": 10}', '{"n": 1200000}', '{"n": 20}']);
    for (const topic of ['sized.eo', 'sized.alo']) {
      expect((await consumeAll(province, topic, 2)).map((m) => JSON.parse(m.value as string).n)).toEqual([10, 20]);
    }
    const dead = await client.query(`SELECT "offset", error FROM pipeline_kafka.dead_letters WHERE topic = 'sizes'`);
    expect(dead.rows).toEqual([{ offset: '1', error: expect.stringMatching(/^54000: a message for Kafka topic "sized\.(eo|alo)" would be \d+ bytes/) }]);
  });

  it('creates a missing sink topic with the partitions asked for; with create_topic false the sink says why it waits, in pipeline_kafka.sinks', async () => {
    await client.query(`CREATE FOREIGN TABLE new_topic_sink (n int) SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'made.by.sluice', partitions '3', key 'n::text')`);
    await client.query(`CREATE FOREIGN TABLE new_topic_alo (n int) SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'made.alo', delivery 'at_least_once')`);
    await client.query('CREATE FOREIGN TABLE feed_new (n int) SERVER pipelinedb');
    await client.query("CREATE VIEW feed_new_t WITH (action=transform, outputfunc=pipeline_kafka.emit_tuple('made.by.transform')) AS SELECT n FROM feed_new");
    await client.query('INSERT INTO new_topic_sink SELECT g FROM generate_series(1, 30) g');
    await client.query('INSERT INTO new_topic_alo VALUES (1), (2)');
    await client.query('INSERT INTO feed_new VALUES (7)');
    await waitFor(
      () => client.query("SELECT sum(pending)::int AS pending FROM pipeline_kafka.sinks WHERE topic IN ('made.by.sluice', 'made.by.transform')"),
      (r) => r.rows[0].pending === 0,
      30_000,
      'the outbox to drain into the new topics',
    );
    const made = await consumeAll(province, 'made.by.sluice', 30);
    expect(made.map((m) => Number(m.key)).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(made.map((m) => m.partition))).toEqual(new Set([0, 1, 2]));
    expect((await consumeAll(province, 'made.alo', 2)).map((m) => JSON.parse(m.value as string).n)).toEqual([1, 2]);
    expect((await consumeAll(province, 'made.by.transform', 1)).map((m) => JSON.parse(m.value as string).n)).toEqual([7]);

    await expect(client.query(`CREATE FOREIGN TABLE bad_partitions (n int) SERVER kafka OPTIONS (topic 'x', partitions 'many')`)).rejects.toMatchObject({ code: '22023' });
    // An at-least-once sink produces while the INSERT runs: the INSERT fails, saying why.
    await client.query(`CREATE FOREIGN TABLE not_made_alo (n int) SERVER kafka OPTIONS (brokers '${city.brokers}', topic 'never.made.alo', create_topic 'false', delivery 'at_least_once')`);
    await expect(client.query('INSERT INTO not_made_alo VALUES (1)')).rejects.toMatchObject({ code: '42704', message: expect.stringContaining('"never.made.alo" does not exist') });
    await client.query(`CREATE FOREIGN TABLE not_made (n int) SERVER kafka OPTIONS (brokers '${city.brokers}', topic 'never.made', create_topic 'false')`);
    await client.query('INSERT INTO not_made VALUES (1)');
    const waiting = await waitFor(
      () => client.query("SELECT state, last_error, pending::int FROM pipeline_kafka.sinks WHERE relation = 'not_made'"),
      (r) => r.rows[0]?.state === 'retrying',
      30_000,
      'the sink to a missing topic to say it is retrying',
    );
    expect(waiting.rows[0]).toMatchObject({ pending: 1, last_error: expect.stringContaining('topic "never.made" does not exist') });
    expect(waiting.rows[0].last_error).toContain('create_topic');
    // Once the topic exists the message goes out, and the sink says it runs.
    await createTopics(city, [{ topic: 'never.made', partitions: 1 }]);
    expect((await consumeAll(city, 'never.made', 1)).map((m) => JSON.parse(m.value as string).n)).toEqual([1]);
    await waitFor(
      () => client.query("SELECT state, pending::int FROM pipeline_kafka.sinks WHERE relation = 'not_made'"),
      (r) => r.rows[0]?.state === 'running' && r.rows[0]?.pending === 0,
      30_000,
      'the sink to report running again',
    );
  });

  it('publishes a view\'s changes as an upsert topic: keyed by group, the new row, a tombstone when the group expires', async () => {
    await createTopics(province, [{ topic: 'counts.changes', partitions: 3 }, { topic: 'minutes.changes', partitions: 1 }, { topic: 'counts.log', partitions: 1 }]);
    await client.query('CREATE FOREIGN TABLE clicks (url text, n int, ts timestamptz) SERVER pipelinedb');
    await client.query('CREATE VIEW click_counts AS SELECT url, count(*), sum(n) FROM clicks GROUP BY url');
    await client.query(`CREATE VIEW click_feed WITH (action=transform, outputfunc=pipeline_kafka.emit_upserts('counts.changes')) AS SELECT * FROM output_of('click_counts')`);
    await client.query(`CREATE VIEW click_log WITH (action=transform, outputfunc=pipeline_kafka.emit_tuple('counts.log')) AS SELECT old, new FROM output_of('click_counts')`);
    await client.query(`CREATE VIEW click_minutes WITH (ttl = '1 hour', ttl_column = 'm') AS SELECT minute(ts) AS m, url, count(*) FROM clicks GROUP BY m, url`);
    await client.query(`CREATE VIEW minute_feed WITH (action=transform, outputfunc=pipeline_kafka.emit_upserts('minutes.changes', '${province.brokers}')) AS SELECT * FROM output_of('click_minutes')`);
    await client.query(`INSERT INTO clicks VALUES ('/a', 1, now()), ('/b', 2, '2001-01-01 00:00:30+00'), ('/a', 3, now())`);
    await client.query(`INSERT INTO clicks VALUES ('/a', 10, now())`);

    const counts = await consumeAll(province, 'counts.changes', 3);
    const latest = new Map(counts.sort((x, y) => x.offset - y.offset).map((m) => [m.key, m.value]));
    expect([...latest.keys()].sort()).toEqual(['/a', '/b']);
    expect(JSON.parse(latest.get('/a') as string)).toEqual({ url: '/a', count: 3, sum: 14 });
    expect(JSON.parse(latest.get('/b') as string)).toEqual({ url: '/b', count: 1, sum: 2 });

    // emit_tuple over output_of: every change as it is, old and new rows.
    const log = await consumeAll(province, 'counts.log', 3);
    expect(log.map((m) => JSON.parse(m.value as string))).toEqual([
      { old: null, new: { url: '/a', count: 2, sum: 4 } },
      { old: null, new: { url: '/b', count: 1, sum: 2 } },
      { old: { url: '/a', count: 2, sum: 4 }, new: { url: '/a', count: 3, sum: 14 } },
    ]);

    // The 2001 group is past the TTL: the reaper removes it and its key gets a tombstone.
    const minutes = await consumeAll(province, 'minutes.changes', 4);
    const old = minutes.filter((m) => m.key?.includes('2001-01-01'));
    expect(old.map((m) => m.value === null)).toEqual([false, true]);
    expect(JSON.parse(old[0].key as string)).toEqual(['2001-01-01T00:00:00+00:00', '/b']);
  });

  it('emit_tuple as an ordinary trigger on a table, and produce_message, go out only when the transaction commits', async () => {
    await createTopics(province, [{ topic: 'table.rows', partitions: 1 }, { topic: 'direct', partitions: 1 }]);
    await client.query('CREATE TABLE accounts (id int PRIMARY KEY, owner text)');
    await client.query(`CREATE TRIGGER accounts_to_kafka AFTER INSERT OR UPDATE ON accounts FOR EACH ROW EXECUTE PROCEDURE pipeline_kafka.emit_tuple('table.rows', '-1', 'id')`);
    await client.query(`INSERT INTO accounts VALUES (1, 'ann'), (2, 'bob')`);
    await client.query(`UPDATE accounts SET owner = 'bea' WHERE id = 2`);
    await client.query('BEGIN');
    await client.query(`INSERT INTO accounts VALUES (3, 'never')`);
    await client.query(`SELECT pipeline_kafka.produce_message('direct', 'rolled back')`);
    await client.query('ROLLBACK');
    expect((await client.query(`SELECT pipeline_kafka.produce_message('direct', 'hello', key := 'k1')`)).rows[0]).toEqual({ produce_message: 'success' });
    const rows = await consumeAll(province, 'table.rows', 3);
    expect(rows.map((m) => [m.key, JSON.parse(m.value as string)])).toEqual([
      ['1', { id: 1, owner: 'ann' }],
      ['2', { id: 2, owner: 'bob' }],
      ['2', { id: 2, owner: 'bea' }],
    ]);
    const direct = await consumeAll(province, 'direct', 1);
    expect(direct.map((m) => [m.key, m.value])).toEqual([['k1', 'hello']]);
  });

  it('says which guarantee each sink gives, in the catalog', async () => {
    await createTopics(province, [{ topic: 'fast', partitions: 1 }]);
    await client.query(`CREATE FOREIGN TABLE fast_sink (x int, note text) SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'fast', delivery 'at_least_once', format 'text')`);
    // At least once: produced (and acknowledged) before the INSERT returns.
    await client.query(`INSERT INTO fast_sink VALUES (1, 'a	b'), (2, NULL)`);
    expect((await kcatConsume(province.brokers, 'fast')).map((m) => m.value)).toEqual(['1\ta\\tb', '2\t\\N']);
    const sinks = await client.query(`SELECT relation, kind, topic, delivery FROM pipeline_kafka.sinks WHERE topic IN ('events.std', 'fast', 'split.order') ORDER BY topic`);
    expect(sinks.rows).toEqual([
      { relation: 'std_events', kind: 'stream', topic: 'events.std', delivery: 'exactly_once' },
      { relation: 'fast_sink', kind: 'stream', topic: 'fast', delivery: 'at_least_once' },
      { relation: 'public.split_order', kind: 'transform', topic: 'split.order', delivery: 'exactly_once' },
    ]);
    await expect(client.query(`CREATE FOREIGN TABLE bad_sink (x int) SERVER kafka OPTIONS (topic 't', delivery 'twice')`)).rejects.toMatchObject({ code: '22023' });
    await expect(client.query(`CREATE FOREIGN TABLE bad_key (x int) SERVER kafka OPTIONS (topic 't', key 'nope')`)).rejects.toMatchObject({ code: '42703' });
  });
});

describe('topic → transform → topic across crashes and a target outage', () => {
  const dataDir = tempDataDir();
  // A small outbox limit, so that the outage below fills it and the source has to pause.
  const backlogLimit = 1000;
  const sluice = new SluiceProcess(dataDir, { SLUICE_KAFKA_SINK_BACKLOG: String(backlogLimit) });
  let producer: Producer;

  beforeAll(async () => {
    await createTopics(city, [{ topic: 'crash.in', partitions: 4 }]);
    await createTopics(province, [{ topic: 'crash.out', partitions: 4 }]);
    // Idempotent, so a retried send cannot put an input message in twice: any duplicate in the output is Sluice's.
    producer = new Kafka({ brokers: [city.brokers], logLevel: logLevel.NOTHING }).producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await sluice.start();
    await sluice.query(`CREATE FOREIGN TABLE crash_in (id int, name text) SERVER kafka OPTIONS (brokers '${city.brokers}', topic 'crash.in', start_offset '-2', batchsize '200')`);
    await sluice.query(`CREATE FOREIGN TABLE crash_out (id int, name text) SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'crash.out', key 'id')`);
    await sluice.query(`CREATE VIEW crash_t WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('crash_out')) AS SELECT id, upper(name) AS name FROM crash_in`);
  }, 120_000);

  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    await sluice.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function produce(from: number, to: number, pauseMs: number): Promise<void> {
    for (let i = from; i < to; i += 250) {
      const ids = Array.from({ length: Math.min(250, to - i) }, (_, j) => i + j);
      await producer.send({ topic: 'crash.in', messages: ids.map((id) => ({ key: String(id), value: JSON.stringify({ id, name: `n${id}` }) })) });
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  function expectExactly(messages: ConsumedMessage[], count: number): void {
    const ids = messages.map((m) => Number(m.key));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(count);
    expect(Math.max(...ids)).toBe(count - 1);
    for (const m of messages) expect(JSON.parse(m.value as string)).toEqual({ id: Number(m.key), name: `N${m.key}` });
  }

  it('delivers every message exactly once when Sluice is killed with SIGKILL at random points', async () => {
    const total = 6000;
    const producing = produce(0, total, 40);
    let seed = 11;
    for (let crash = 0; crash < 4; crash++) {
      seed = (seed * 48271) % 2147483647;
      await new Promise((resolve) => setTimeout(resolve, 300 + (seed % 900)));
      sluice.kill();
      await sluice.start();
    }
    await producing;
    expectExactly(await consumeAll(province, 'crash.out', total, 90_000), total);
  }, 180_000);

  it('delivers every message exactly once when its managed PostgreSQL is killed with SIGKILL mid-stream (source and sink relay reconnect)', async () => {
    const before = (await kcatConsume(province.brokers, 'crash.out')).length;
    const total = before + 3000;
    const producing = produce(before, total, 100);
    await new Promise((resolve) => setTimeout(resolve, 400));
    process.kill(Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL');
    await producing;
    expectExactly(await consumeAll(province, 'crash.out', total, 90_000), total);
  }, 180_000);

  it('pauses the source while the target cluster is down for 30 s (bounded outbox), and delivers everything once when it returns', async () => {
    const before = (await kcatConsume(province.brokers, 'crash.out')).length;
    const during = 6000;
    province.kill();
    await produce(before, before + during, 10);
    const pending = async () => Number((await sluice.query(`SELECT coalesce(sum(pending), 0) AS n FROM pipeline_kafka.outbox_backlog WHERE topic = 'crash.out'`)).rows[0].n);
    const consumed = async () => Number((await sluice.query(`SELECT coalesce(sum(o."offset" + 1), 0) AS n FROM pipeline_kafka.offsets o JOIN pipeline_kafka.consumers c ON c.id = o.consumer_id WHERE c.topic = 'crash.in'`)).rows[0].n);
    await waitFor(pending, (n) => n >= backlogLimit, 60_000, 'the outbox filling up');
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    // Still paused after 30 s: the outbox stopped near its limit, the rest waits unread in the source topic.
    const waiting = await pending();
    expect(waiting).toBeGreaterThanOrEqual(backlogLimit);
    expect(waiting).toBeLessThan(during);
    expect(await consumed()).toBe(before + waiting);
    await province.restart();
    expectExactly(await consumeAll(province, 'crash.out', before + during, 120_000), before + during);
    expect(await pending()).toBe(0);
  }, 240_000);
});

describe('Kafka sinks on an external PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let sluice: RunningSluice;

  beforeAll(async () => {
    database = await createTestDatabase();
    sluice = await startSluice({ postgresUrl: database.url });
  });

  afterAll(async () => {
    await sluice?.stop();
    await database?.drop();
  });

  it('keeps the outbox in the external database and relays it exactly once', async () => {
    await createTopics(city, [{ topic: 'ext.in', partitions: 2 }]);
    await createTopics(province, [{ topic: 'ext.out', partitions: 2 }]);
    const client = await sluice.client();
    await client.query(`CREATE FOREIGN TABLE ext_in (id int, name text) SERVER kafka OPTIONS (brokers '${city.brokers}', topic 'ext.in', start_offset '-2')`);
    await client.query(`CREATE FOREIGN TABLE ext_out (id int, name text) SERVER kafka OPTIONS (brokers '${province.brokers}', topic 'ext.out', key 'id')`);
    await client.query(`CREATE VIEW ext_t WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('ext_out')) AS SELECT id, initcap(name) FROM ext_in WHERE id % 2 = 0`);
    await kcatProduce(city.brokers, 'ext.in', Array.from({ length: 100 }, (_, id) => JSON.stringify({ id, name: `name ${id}` })));
    await client.query(`INSERT INTO ext_out VALUES (1000, 'Direct')`);
    // Generous: this runs right after the province broker's restart above, alongside other test files.
    const got = await consumeAll(province, 'ext.out', 51, 100_000).catch(async (err: Error) => {
      // Say where the messages stopped: not read from the source, or read and waiting in the outbox.
      const state = await Promise.all(
        ['SELECT * FROM pipeline_kafka.consumer_lag', 'SELECT * FROM pipeline_kafka.outbox_backlog', 'SELECT count(*) FROM pipeline_kafka.dead_letters'].map(
          async (sql) => JSON.stringify((await client.query(sql)).rows),
        ),
      );
      throw new Error(`${err.message}\n${state.join('\n')}`);
    });
    expect(got.map((m) => JSON.parse(m.value as string)).sort((a, b) => a.id - b.id)).toEqual([
      ...Array.from({ length: 50 }, (_, i) => ({ id: 2 * i, name: `Name ${2 * i}` })),
      { id: 1000, name: 'Direct' },
    ]);
    expect((await client.query('SELECT count(*)::int AS n FROM pipeline_kafka.outbox')).rows).toEqual([{ n: 0 }]);
  }, 120_000);
});
