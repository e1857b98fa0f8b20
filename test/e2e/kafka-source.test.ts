import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKafka, type KafkaBroker } from '../support/kafka.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';
import { fetchUntil, foldSubscription, viewState } from '../support/subscription.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Kafka sources end to end: a real broker, messages produced with kafkajs and
 * kcat, and views compared with PostgreSQL's own GROUP BY over the same
 * messages (loaded into a plain table through the same server).
 */

// Alerts are checked every 300 ms here (every 5 s by default).
process.env.SLUICE_ALERT_INTERVAL_MS = '300';

let kafka: KafkaBroker;
let producer: Producer;
let admin: ReturnType<Kafka['admin']>;

async function createTopic(topic: string, partitions: number): Promise<void> {
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
}

function kcatProduce(topic: string, lines: string[], options: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', ['-P', '-b', kafka.brokers, '-t', topic, ...options], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => reject(new Error(`kcat is not installed (apt-get install kcat): ${err.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kcat exited with ${code}: ${stderr}`))));
    child.stdin.end(lines.join('\n') + '\n');
  });
}

interface Order {
  city: string;
  amount: string;
  qty: number;
}

function orders(count: number, seed: number): Order[] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: count }, () => ({ city: `city${Math.floor(next() * 7)}`, amount: (next() * 1000).toFixed(2), qty: Math.floor(next() * 10) }));
}

/** The oracle: the same rows in a plain table, grouped by PostgreSQL itself. */
async function oracle(client: pg.Client, table: string, rows: Order[]): Promise<unknown[]> {
  await client.query(`CREATE TABLE IF NOT EXISTS ${table} (city text, amount numeric, qty int)`);
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    await client.query(`INSERT INTO ${table} VALUES ${chunk.map((r) => `('${r.city}', ${r.amount}, ${r.qty})`).join(', ')}`);
  }
  return (await client.query(`SELECT city, count(*), sum(amount), sum(qty) AS qty FROM ${table} GROUP BY city ORDER BY city`)).rows;
}

async function viewRows(client: pg.Client, view: string): Promise<unknown[]> {
  return (await client.query(`SELECT city, count, sum, qty FROM ${view} ORDER BY city`)).rows;
}

async function total(client: pg.Client, view: string): Promise<number> {
  return Number((await client.query(`SELECT coalesce(sum(count), 0)::int8 AS n FROM ${view}`)).rows[0].n);
}

beforeAll(async () => {
  kafka = await startKafka();
  const client = new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
  admin = client.admin();
  await admin.connect();
  producer = client.producer();
  await producer.connect();
}, 180_000);

afterAll(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  await kafka?.stop({ removeData: true });
});

describe('pipeline_kafka consumers', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await client.query(`SELECT pipeline_kafka.add_broker('${kafka.brokers}')`);
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('follows a JSON topic of 8 partitions produced by kafkajs and kcat, equal to a batch count of the messages', async () => {
    await createTopic('orders', 8);
    await client.query('CREATE FOREIGN TABLE orders_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW revenue AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM orders_s GROUP BY city');
    expect((await client.query(`SELECT pipeline_kafka.consume_begin('orders', 'orders_s', format := 'json', parallelism := 4, start_offset := -2)`)).rows).toEqual([{ consume_begin: 'success' }]);
    const fromKafkajs = orders(4000, 1);
    const fromKcat = orders(500, 2);
    for (let i = 0; i < fromKafkajs.length; i += 500) {
      await producer.send({ topic: 'orders', messages: fromKafkajs.slice(i, i + 500).map((o, j) => ({ key: String(i + j), value: JSON.stringify(o) })) });
    }
    await kcatProduce('orders', fromKcat.map((o) => JSON.stringify({ ...o, extra: 'ignored' })));
    const all = [...fromKafkajs, ...fromKcat];
    await waitFor(() => total(client, 'revenue'), (n) => n >= all.length, 60_000, 'all orders counted');
    expect(await viewRows(client, 'revenue')).toEqual(await oracle(client, 'orders_oracle', all));
    const consumers = await client.query("SELECT topic, relation, format, parallelism FROM pipeline_kafka.consumers WHERE topic = 'orders'");
    expect(consumers.rows).toEqual([{ topic: 'orders', relation: 'public.orders_s', format: 'json', parallelism: 4 }]);
    const offsets = await client.query('SELECT sum("offset" + 1)::int AS n, count(*)::int AS partitions FROM pipeline_kafka.offsets o JOIN pipeline_kafka.consumers c ON c.id = o.consumer_id WHERE c.topic = $1', ['orders']);
    expect(offsets.rows).toEqual([{ n: all.length, partitions: 8 }]);
    const lag = await client.query("SELECT sum(lag)::int AS lag FROM pipeline_kafka.consumer_lag WHERE topic = 'orders'");
    expect(lag.rows).toEqual([{ lag: 0 }]);
    const marks = await client.query("SELECT * FROM pipeline_kafka.topic_watermarks('orders')");
    expect(marks.rows.length).toBe(8);
    expect(marks.rows.reduce((sum, m) => sum + Number(m.high), 0)).toBe(all.length);
  });

  it('sends bad messages to the dead-letter table with their offsets and counts every good one', async () => {
    await createTopic('dirty', 1);
    await client.query('CREATE FOREIGN TABLE dirty_s (city text, amount numeric, qty int, ts timestamptz, note text) SERVER pipelinedb');
    await client.query('CREATE VIEW dirty_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty, max(length(note)) AS note FROM dirty_s GROUP BY city');
    await client.query(`SELECT pipeline_kafka.consume_begin('dirty', 'dirty_s', format := 'json', start_offset := -2)`);
    const huge = 'x'.repeat(900_000);
    const messages = [
      JSON.stringify({ city: 'a', amount: 1, qty: 1 }), // 0
      '{"city": "a", "amount": ', // 1: malformed JSON
      JSON.stringify({ city: 'a', amount: 'lots', qty: 1 }), // 2: a string where a number belongs
      '', // 3: empty message
      JSON.stringify({ city: 'h', amount: 2, qty: 2, note: huge }), // 4: huge but valid
      JSON.stringify({ city: 'a', amount: 3, qty: 99999999999 }), // 5: out of range for int
      JSON.stringify({ city: 'b', amount: 4, qty: 4, ts: 'not a time' }), // 6: checked by the store's input function
      '[1, 2, 3]', // 7: not an object
      JSON.stringify({ city: 'b', amount: 5, qty: 5, ts: '2026-11-21T10:00:00Z' }), // 8
    ];
    await producer.send({ topic: 'dirty', messages: messages.map((value) => ({ value })) });
    await waitFor(() => total(client, 'dirty_v'), (n) => n >= 3, 30_000, 'good messages counted');
    const letters = await waitFor(
      async () => (await client.query("SELECT \"offset\"::int, length(value) AS bytes, error FROM pipeline_kafka.dead_letters WHERE topic = 'dirty' ORDER BY \"offset\"")).rows,
      (rows) => rows.length >= 5,
      30_000,
      'dead letters',
    );
    expect(letters.map((l) => l.offset)).toEqual([1, 2, 3, 5, 6, 7]);
    expect(letters.find((l) => l.offset === 2)?.error).toContain('invalid input syntax for type numeric: "lots"');
    expect(letters.find((l) => l.offset === 3)?.error).toContain('empty message');
    expect(letters.find((l) => l.offset === 5)?.error).toContain('out of range for type integer');
    expect(letters.find((l) => l.offset === 6)?.error).toContain('timestamp with time zone');
    expect(letters.find((l) => l.offset === 1)?.bytes).toBe(messages[1].length);
    expect((await client.query('SELECT city, count::int, sum, note FROM dirty_v ORDER BY city')).rows).toEqual([
      { city: 'a', count: 1, sum: '1', note: null },
      { city: 'b', count: 1, sum: '5', note: null },
      { city: 'h', count: 1, sum: '2', note: 900_000 },
    ]);
    const stats = await client.query("SELECT messages::int, dead_letters::int FROM pipeline_kafka.consumers WHERE topic = 'dirty'");
    expect(stats.rows).toEqual([{ messages: 3, dead_letters: 6 }]);
  });

  it('reads csv and text messages with PipelineDB\'s delimiter and quote options', async () => {
    await createTopic('csv_in', 2);
    await createTopic('text_in', 1);
    await client.query('CREATE FOREIGN TABLE lines_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW lines_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM lines_s GROUP BY city');
    await client.query(`SELECT pipeline_kafka.consume_begin('csv_in', 'lines_s', format := 'csv', delimiter := ';', quote := '''', start_offset := -2)`);
    await client.query(`SELECT pipeline_kafka.consume_begin('text_in', 'lines_s', format := 'text', delimiter := '|', start_offset := -2)`);
    await producer.send({ topic: 'csv_in', messages: ["'paris; fr';1.5;2", 'lyon;2;'].map((value) => ({ value })) });
    await kcatProduce('text_in', ['lyon|3|4', 'nice|\\N|1']);
    await waitFor(() => total(client, 'lines_v'), (n) => n >= 4, 30_000, 'csv and text rows');
    expect((await client.query('SELECT city, count::int, sum, qty::int FROM lines_v ORDER BY city')).rows).toEqual([
      { city: 'lyon', count: 2, sum: '5', qty: 4 },
      { city: 'nice', count: 1, sum: null, qty: 1 },
      { city: 'paris; fr', count: 1, sum: '1.5', qty: 2 },
    ]);
  });

  it('resumes where it stopped after consume_end and consume_begin (start_offset NULL), counting nothing twice', async () => {
    await createTopic('resume', 3);
    await client.query('CREATE FOREIGN TABLE resume_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW resume_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM resume_s GROUP BY city');
    await client.query(`SELECT pipeline_kafka.consume_begin('resume', 'resume_s', format := 'json', start_offset := -2)`);
    const first = orders(600, 3);
    await producer.send({ topic: 'resume', messages: first.map((o) => ({ value: JSON.stringify(o) })) });
    await waitFor(() => total(client, 'resume_v'), (n) => n >= first.length, 30_000, 'first part');
    expect((await client.query(`SELECT pipeline_kafka.consume_end('resume', 'resume_s')`)).rows).toEqual([{ consume_end: 'success' }]);
    const second = orders(400, 4);
    await producer.send({ topic: 'resume', messages: second.map((o) => ({ value: JSON.stringify(o) })) });
    await new Promise((r) => setTimeout(r, 1000));
    expect(await total(client, 'resume_v')).toBe(first.length);
    await client.query(`SELECT pipeline_kafka.consume_begin('resume', 'resume_s', format := 'json')`);
    await waitFor(() => total(client, 'resume_v'), (n) => n >= first.length + second.length, 30_000, 'second part');
    expect(await viewRows(client, 'resume_v')).toEqual(await oracle(client, 'resume_oracle', [...first, ...second]));
  });

  it('keeps to a rate limit set at runtime (messages per second), says it is throttled, and catches up once the limit is lifted', async () => {
    await createTopic('limited', 2);
    await client.query('CREATE FOREIGN TABLE limited_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW limited_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM limited_s GROUP BY city');
    await client.query(`SELECT pipeline_kafka.consume_begin('limited', 'limited_s', format := 'json', start_offset := -2)`);
    await expect(client.query(`SELECT pipeline_kafka.set_rate_limit('limited', 'limited_s', messages_per_second := 0)`)).rejects.toMatchObject({ code: '22023' });
    await expect(client.query(`SELECT pipeline_kafka.set_rate_limit('nothing', 'limited_s', 10)`)).rejects.toMatchObject({ code: '42704' });
    expect((await client.query(`SELECT pipeline_kafka.set_rate_limit('limited', 'limited_s', messages_per_second := 100)`)).rows).toEqual([{ set_rate_limit: 'success' }]);
    const rows = orders(1500, 9);
    const started = Date.now();
    await producer.send({ topic: 'limited', messages: rows.map((o) => ({ value: JSON.stringify(o) })) });
    const throttled = await waitFor(
      () => client.query("SELECT state, max_messages_per_second::int AS limit FROM pipeline_kafka.sources WHERE topic = 'limited'"),
      (r) => r.rows[0]?.state === 'throttled',
      30_000,
      'the source to say it is throttled',
    );
    expect(throttled.rows).toEqual([{ state: 'throttled', limit: 100 }]);
    await new Promise((r) => setTimeout(r, 2000));
    // At 100 a second, with a second's burst: far from all of them.
    const seconds = (Date.now() - started) / 1000;
    const applied = await total(client, 'limited_v');
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThanOrEqual(100 * (seconds + 1) + 100);
    await client.query(`SELECT pipeline_kafka.set_rate_limit('limited', 'limited_s')`);
    await waitFor(() => total(client, 'limited_v'), (n) => n >= rows.length, 60_000, 'all messages once the limit is lifted');
    expect(await viewRows(client, 'limited_v')).toEqual(await oracle(client, 'limited_oracle', rows));
    await waitFor(
      () => client.query("SELECT state, max_messages_per_second FROM pipeline_kafka.sources WHERE topic = 'limited'"),
      (r) => r.rows[0]?.state === 'running' && r.rows[0]?.max_messages_per_second === null,
      10_000,
      'the source to run unthrottled',
    );
  });

  it('fires a lag alert while a rate-limited source falls behind and clears it once it catches up: sluice.alerts, NOTIFY sluice_alerts, a webhook', async () => {
    const posted: { state: string; condition: string }[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        posted.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/alerts`;
    const listener = await sluice.client();
    const notified: { state: string; condition: string; value?: number }[] = [];
    listener.on('notification', (n) => notified.push(JSON.parse(n.payload ?? '{}')));
    await listener.query('LISTEN sluice_alerts');

    await createTopic('alerted', 1);
    await client.query('CREATE FOREIGN TABLE alerted_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW alerted_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM alerted_s GROUP BY city');
    await client.query(`SELECT pipeline_kafka.consume_begin('alerted', 'alerted_s', format := 'json', start_offset := -2)`);
    await client.query(`SELECT pipeline_kafka.set_rate_limit('alerted', 'alerted_s', messages_per_second := 100)`);
    await expect(client.query("SELECT sluice.set_alert('alerted', 'nope', max_lag_messages := 1)")).rejects.toMatchObject({ code: '42P01' });
    const rule = `SELECT sluice.set_alert('alerted', 'alerted_s', max_lag_messages := 200, max_lag_seconds := 1, webhook := '${hookUrl}')`;
    expect((await client.query(rule)).rows).toEqual([{ set_alert: 'success' }]);
    const rows = orders(1200, 11);
    await producer.send({ topic: 'alerted', messages: rows.map((o) => ({ value: JSON.stringify(o) })) });
    // Behind in messages, and (the last applied message growing older) in seconds.
    const firing = await waitFor(
      () => client.query("SELECT condition, value::float8 AS value, threshold::int, since <= now() AS since FROM sluice.alerts WHERE topic = 'alerted' ORDER BY condition"),
      (r) => r.rows.length === 2,
      30_000,
      'the lag alerts to fire',
    );
    expect(firing.rows).toMatchObject([
      { condition: 'lag', threshold: 200, since: true },
      { condition: 'lag_seconds', threshold: 1, since: true },
    ]);
    expect(firing.rows[0].value).toBeGreaterThan(200);
    expect(firing.rows[1].value).toBeGreaterThan(1);
    const lagging = await client.query("SELECT lag::int, lag_seconds > 1 AS late FROM pipeline_kafka.sources WHERE topic = 'alerted'");
    expect(lagging.rows[0].late).toBe(true);
    // The lag shrinks once the limit is lifted, and the alert ends.
    await client.query(`SELECT pipeline_kafka.set_rate_limit('alerted', 'alerted_s')`);
    await waitFor(() => total(client, 'alerted_v'), (n) => n >= rows.length, 60_000, 'the source to catch up');
    await waitFor(() => client.query("SELECT count(*)::int AS n FROM sluice.alerts WHERE topic = 'alerted'"), (r) => r.rows[0].n === 0, 30_000, 'the alert to clear');
    await waitFor(async () => posted.length, (n) => n >= 4, 10_000, 'the webhook to get every start and end');
    const told = (events: { state: string; condition: string }[]) => events.map((n) => `${n.state} ${n.condition}`).sort();
    const expected = ['firing lag', 'firing lag_seconds', 'resolved lag', 'resolved lag_seconds'];
    expect(told(notified)).toEqual(expected);
    expect(told(posted)).toEqual(expected);
    expect(notified.find((n) => n.condition === 'lag')?.value).toBeGreaterThan(200);
    expect((await client.query("SELECT sluice.set_alert('alerted', 'alerted_s')")).rows).toEqual([{ set_alert: 'removed' }]);
    await new Promise<void>((resolve) => hook.close(() => resolve()));
  });

  it('fires a stalled alert when a source applies nothing for stalled_after while messages wait', async () => {
    await createTopic('stalling', 1);
    await client.query('CREATE FOREIGN TABLE stalling_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW stalling_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM stalling_s GROUP BY city');
    await client.query(`SELECT pipeline_kafka.consume_begin('stalling', 'stalling_s', format := 'json', start_offset := -2)`);
    // One byte a second: the first message waits for minutes.
    await client.query(`SELECT pipeline_kafka.set_rate_limit('stalling', 'stalling_s', bytes_per_second := 1)`);
    await client.query("SELECT sluice.set_alert('stalling', 'stalling_s', stalled_after := '1 second')");
    await producer.send({ topic: 'stalling', messages: orders(5, 12).map((o) => ({ value: JSON.stringify(o) })) });
    const stalled = await waitFor(
      () => client.query("SELECT condition, value >= threshold AS long_enough FROM sluice.alerts WHERE topic = 'stalling'"),
      (r) => r.rows.length === 1,
      30_000,
      'the stalled alert',
    );
    expect(stalled.rows).toEqual([{ condition: 'stalled', long_enough: true }]);
    await client.query(`SELECT pipeline_kafka.set_rate_limit('stalling', 'stalling_s')`);
    await waitFor(() => client.query("SELECT count(*)::int AS n FROM sluice.alerts WHERE topic = 'stalling'"), (r) => r.rows[0].n === 0, 30_000, 'the stalled alert to clear');
    expect(await total(client, 'stalling_v')).toBe(5);
  });

  it('replays a topic from an offset or a time: with rebuild its views end as if built from there; never re-sends through a transform', async () => {
    await createTopic('replayed', 2);
    await client.query('CREATE FOREIGN TABLE replayed_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW replayed_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM replayed_s GROUP BY city');
    await client.query('CREATE VIEW replayed_totals AS SELECT combine((delta).count) AS n FROM output_of(\'replayed_v\')');
    await client.query(`SELECT pipeline_kafka.consume_begin('replayed', 'replayed_s', format := 'json', start_offset := -2)`);
    const early = orders(300, 21);
    await producer.send({ topic: 'replayed', messages: early.map((o) => ({ value: JSON.stringify(o) })) });
    await waitFor(() => total(client, 'replayed_v'), (n) => n >= early.length, 30_000, 'the early messages');
    await new Promise((r) => setTimeout(r, 1100));
    const mark = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 100));
    const late = orders(200, 22);
    await producer.send({ topic: 'replayed', messages: late.map((o) => ({ value: JSON.stringify(o) })) });
    await waitFor(() => total(client, 'replayed_v'), (n) => n >= early.length + late.length, 30_000, 'the late messages');

    // Rebuilt from the start: the same view, not twice the counts; views down the chain are rebuilt too.
    expect((await client.query(`SELECT pipeline_kafka.replay('replayed', 'replayed_s', from_offset := 0)`)).rows).toEqual([{ replay: '500' }]);
    await waitFor(() => total(client, 'replayed_v'), (n) => n >= 500, 30_000, 'the rebuilt view');
    await new Promise((r) => setTimeout(r, 500));
    expect(await viewRows(client, 'replayed_v')).toEqual(await oracle(client, 'replayed_all', [...early, ...late]));
    expect((await client.query('SELECT n::int FROM replayed_totals')).rows).toEqual([{ n: 500 }]);
    // From a time: only what came after it.
    expect((await client.query(`SELECT pipeline_kafka.replay('replayed', 'replayed_s', from_time := '${mark}')`)).rows).toEqual([{ replay: '200' }]);
    await waitFor(() => total(client, 'replayed_v'), (n) => n >= 200, 30_000, 'the view rebuilt from the time');
    await new Promise((r) => setTimeout(r, 500));
    expect(await viewRows(client, 'replayed_v')).toEqual(await oracle(client, 'replayed_late', late));
    // Without rebuild the messages are applied again, on top.
    await client.query(`SELECT pipeline_kafka.replay('replayed', 'replayed_s', from_offset := 0, rebuild := false)`);
    await waitFor(() => total(client, 'replayed_v'), (n) => n >= 700, 30_000, 'the messages applied again');

    await client.query('CREATE FOREIGN TABLE replayed_copy (city text) SERVER pipelinedb');
    await client.query("CREATE VIEW replayed_t WITH (action = transform, outputfunc = pipelinedb.insert_into_stream('replayed_copy')) AS SELECT city FROM replayed_s");
    await expect(client.query(`SELECT pipeline_kafka.replay('replayed', 'replayed_s', from_offset := 0)`)).rejects.toMatchObject({ code: '0A000', message: expect.stringContaining('replayed_t') });
    await client.query('BEGIN');
    await expect(client.query(`SELECT pipeline_kafka.replay('replayed', 'replayed_s', from_offset := 0, rebuild := false)`)).rejects.toMatchObject({ code: '25001' });
    await client.query('ROLLBACK');
    await expect(client.query(`SELECT pipeline_kafka.replay('replayed', 'replayed_s')`)).rejects.toMatchObject({ code: '22023' });
    await expect(client.query(`SELECT pipeline_kafka.replay('replayed', 'replayed_s', from_time := 'infinity', rebuild := false)`)).rejects.toMatchObject({ code: '22008' });
    await client.query("SELECT pipelinedb.deactivate('replayed_t')");
    await client.query("SELECT pipelinedb.deactivate('replayed_totals')");
    await expect(client.query(`SELECT pipeline_kafka.replay('replayed', 'replayed_s', from_offset := 0)`)).rejects.toMatchObject({ code: '0A000', message: expect.stringContaining('replayed_totals') });
  });

  it('routes stream-partitioned messages by their key', async () => {
    await createTopic('routed', 1);
    await client.query('CREATE FOREIGN TABLE left_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE FOREIGN TABLE right_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW left_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM left_s GROUP BY city');
    await client.query('CREATE VIEW right_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM right_s GROUP BY city');
    await client.query(`SELECT pipeline_kafka.consume_begin_stream_partitioned('routed', format := 'json', start_offset := -2)`);
    await producer.send({
      topic: 'routed',
      messages: [
        { key: 'left_s', value: JSON.stringify({ city: 'x', amount: 1, qty: 1 }) },
        { key: 'right_s', value: JSON.stringify({ city: 'y', amount: 2, qty: 2 }) },
        { key: 'right_s', value: JSON.stringify({ city: 'y', amount: 3, qty: 3 }) },
        { key: 'nowhere', value: JSON.stringify({ city: 'z', amount: 4, qty: 4 }) },
      ],
    });
    await waitFor(() => total(client, 'right_v'), (n) => n >= 2, 30_000, 'routed rows');
    expect(await total(client, 'left_v')).toBe(1);
    const letters = await waitFor(async () => (await client.query("SELECT error FROM pipeline_kafka.dead_letters WHERE topic = 'routed'")).rows, (r) => r.length === 1);
    expect(letters[0].error).toContain('"nowhere" does not exist');
  });

  it('consumes a stream declared on SERVER kafka as soon as a view reads it', async () => {
    await createTopic('declared', 2);
    await client.query(`CREATE FOREIGN TABLE declared_s (city text, amount numeric, qty int, kafka_partition int, kafka_offset bigint)
      SERVER kafka OPTIONS (brokers '${kafka.brokers}', topic 'declared', format 'json', start_offset '-2')`);
    await producer.send({ topic: 'declared', messages: orders(300, 5).map((o) => ({ value: JSON.stringify(o) })) });
    await client.query('CREATE VIEW declared_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty, max(kafka_offset) AS last FROM declared_s GROUP BY city');
    await waitFor(() => total(client, 'declared_v'), (n) => n >= 300, 30_000, 'declared stream rows');
    expect((await client.query('SELECT max(last)::int AS last FROM declared_v')).rows[0].last).toBeLessThan(300);
    // Writing to the stream produces to its topic, which the view reads back.
    await client.query("INSERT INTO declared_s (city, qty) VALUES ('written', 7)");
    await waitFor(async () => (await client.query("SELECT qty::int FROM declared_v WHERE city = 'written'")).rows, (r) => r.length === 1 && r[0].qty === 7, 30_000, 'the inserted row back from the topic');
    await client.query('DROP VIEW declared_v');
    const active = await client.query("SELECT active FROM pipeline_kafka.consumers WHERE topic = 'declared'");
    expect(active.rows).toEqual([{ active: false }]);
  });

  it('reads JSON arrays into array columns (PostgreSQL\'s array spelling), and a field that is no array into a dead letter', async () => {
    await createTopic('arrays', 1);
    await client.query('CREATE FOREIGN TABLE tags_s (id int, tags text[], scores int4[], grid float8[], docs jsonb[]) SERVER pipelinedb');
    await client.query('CREATE VIEW tags_v AS SELECT id, tags, scores, grid, docs FROM tags_s');
    await client.query(`SELECT pipeline_kafka.consume_begin('arrays', 'tags_s', format := 'json', start_offset := -2)`);
    await producer.send({
      topic: 'arrays',
      messages: [
        { value: JSON.stringify({ id: 1, tags: ['a', 'b c', 'd"e', null], scores: [1, 2, 3], grid: [[1.5, 2], [3, 4]], docs: [{ k: 1 }] }) },
        { value: JSON.stringify({ id: 2, tags: [], scores: 'not an array' }) },
        { value: JSON.stringify({ id: 3, scores: [7] }) },
      ],
    });
    await waitFor(async () => Number((await client.query('SELECT count(*) AS n FROM tags_v')).rows[0].n), (n) => n >= 2, 30_000, 'array rows');
    expect((await client.query('SELECT id, tags, scores, grid::text, docs::text FROM tags_v ORDER BY id')).rows).toEqual([
      { id: 1, tags: ['a', 'b c', 'd"e', null], scores: [1, 2, 3], grid: '{{1.5,2},{3,4}}', docs: '{"{\\"k\\": 1}"}' },
      { id: 3, tags: null, scores: [7], grid: null, docs: null },
    ]);
    const letters = await waitFor(async () => (await client.query("SELECT \"offset\"::int, error FROM pipeline_kafka.dead_letters WHERE topic = 'arrays'")).rows, (r) => r.length >= 1, 30_000, 'the dead letter');
    expect(letters).toEqual([{ offset: 1, error: expect.stringContaining('malformed array literal') }]);
  });

  it('reads one topic into several streams, a whole message into a jsonb column, and the message metadata', async () => {
    await createTopic('fanout', 2);
    await client.query('CREATE FOREIGN TABLE raw_s (doc jsonb) SERVER pipelinedb');
    await client.query('CREATE FOREIGN TABLE meta_s (city text, kafka_key text, kafka_partition int, kafka_offset bigint, kafka_timestamp timestamptz) SERVER pipelinedb');
    await client.query("CREATE VIEW raw_v AS SELECT doc->>'city' AS city, count(*), sum((doc->>'qty')::int) AS qty FROM raw_s GROUP BY 1");
    await client.query('CREATE VIEW meta_v AS SELECT kafka_key, count(*), max(kafka_offset) AS last, min(kafka_timestamp) AS first_seen, max(kafka_partition) AS part FROM meta_s GROUP BY kafka_key');
    await client.query(`SELECT pipeline_kafka.consume_begin('fanout', 'raw_s', format := 'json', start_offset := -2)`);
    await client.query(`SELECT pipeline_kafka.consume_begin('fanout', 'meta_s', format := 'json', start_offset := -2)`);
    const before = Date.now();
    await producer.send({
      topic: 'fanout',
      messages: [
        { key: 'k1', partition: 0, value: JSON.stringify({ city: 'x', qty: 1, nested: { a: [1, 2] } }) },
        { key: 'k1', partition: 0, value: JSON.stringify({ city: 'x', qty: 2 }) },
        { key: 'k2', partition: 1, value: JSON.stringify({ city: 'y', qty: 3 }) },
      ],
    });
    await waitFor(() => total(client, 'meta_v'), (n) => n >= 3, 30_000, 'metadata rows');
    await waitFor(async () => Number((await client.query('SELECT coalesce(sum(count), 0) AS n FROM raw_v')).rows[0].n), (n) => n >= 3, 30_000, 'jsonb rows');
    expect((await client.query('SELECT city, count::int, qty::int FROM raw_v ORDER BY city')).rows).toEqual([
      { city: 'x', count: 2, qty: 3 },
      { city: 'y', count: 1, qty: 3 },
    ]);
    const meta = (await client.query('SELECT kafka_key, count::int, last::int, part, first_seen FROM meta_v ORDER BY kafka_key')).rows;
    expect(meta.map(({ first_seen: _, ...rest }) => rest)).toEqual([
      { kafka_key: 'k1', count: 2, last: 1, part: 0 },
      { kafka_key: 'k2', count: 1, last: 0, part: 1 },
    ]);
    for (const row of meta) expect(Math.abs((row.first_seen as Date).getTime() - before)).toBeLessThan(60_000);
  });

  it('ends and restarts every consumer with consume_end() and consume_begin()', async () => {
    await client.query('SELECT pipeline_kafka.consume_end()');
    const stopped = await client.query('SELECT count(*)::int AS n FROM pipeline_kafka.consumers WHERE active');
    expect(stopped.rows).toEqual([{ n: 0 }]);
    await producer.send({ topic: 'fanout', messages: [{ key: 'k3', value: JSON.stringify({ city: 'z', qty: 4 }) }] });
    await new Promise((r) => setTimeout(r, 500));
    expect((await client.query("SELECT count(*)::int AS n FROM meta_v WHERE kafka_key = 'k3'")).rows).toEqual([{ n: 0 }]);
    await client.query('SELECT pipeline_kafka.consume_begin()');
    await waitFor(async () => (await client.query("SELECT count(*)::int AS n FROM meta_v WHERE kafka_key = 'k3'")).rows[0].n, (n) => n === 1, 30_000, 'consumers restarted');
  });

  it('SUBSCRIBE follows a view fed by Kafka and INSERT at once: the snapshot and its changes add up to the view', async () => {
    await createTopic('subscribed', 4);
    await client.query('CREATE FOREIGN TABLE subscribed_s (city text, amount numeric, qty int) SERVER pipelinedb');
    await client.query('CREATE VIEW subscribed_v AS SELECT city, count(*), sum(amount), sum(qty) AS qty FROM subscribed_s GROUP BY city');
    await client.query("INSERT INTO subscribed_s VALUES ('city0', 1, 1)");
    const reader = await sluice.client();
    await reader.query('BEGIN');
    await reader.query('DECLARE feed CURSOR FOR SUBSCRIBE subscribed_v');
    await client.query(`SELECT pipeline_kafka.consume_begin('subscribed', 'subscribed_s', format := 'json', start_offset := -2)`);
    const messages = orders(3000, 7);
    const inserted = orders(300, 8);
    const producing = (async () => {
      for (let i = 0; i < messages.length; i += 300) {
        await producer.send({ topic: 'subscribed', messages: messages.slice(i, i + 300).map((o) => ({ value: JSON.stringify(o) })) });
      }
    })();
    for (const o of inserted) await client.query('INSERT INTO subscribed_s VALUES ($1, $2, $3)', [o.city, o.amount, o.qty]);
    await producing;
    await waitFor(() => total(client, 'subscribed_v'), (n) => n >= messages.length + inserted.length + 1, 60_000, 'all counted');
    const expected = await viewState(client, 'subscribed_v');
    const rows = await fetchUntil(reader, 'feed', (fetched) => foldSubscription(fetched).size === expected.size && [...foldSubscription(fetched)].every(([k, v]) => expected.get(k) === v));
    expect(Object.fromEntries(foldSubscription(rows))).toEqual(Object.fromEntries(expected));
    // Kafka batches and INSERTs interleaved, each a transaction of its own.
    expect(new Set(rows.map((r) => r.mz_timestamp)).size).toBeGreaterThan(10);
    await reader.query('COMMIT');
  });

  it('explains a missing topic and a missing broker', async () => {
    await expect(client.query(`SELECT pipeline_kafka.consume_begin('no_such_topic', 'orders_s')`)).rejects.toMatchObject({ code: '42704', message: expect.stringContaining('no_such_topic') });
    await expect(client.query(`SELECT pipeline_kafka.consume_begin('orders', 'no_such_stream')`)).rejects.toMatchObject({ code: '42P01' });
    await expect(client.query(`SELECT pipeline_kafka.remove_broker('nowhere:1')`)).rejects.toMatchObject({ code: '42704' });
  });
});
