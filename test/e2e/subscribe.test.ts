import { spawn } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';
import { fetchUntil, foldSubscription, viewState, type SubscriptionRow } from '../support/subscription.ts';
import { waitFor } from '../support/wait.ts';

/**
 * SUBSCRIBE (Materialize's spelling) over continuous views: the view's rows,
 * then every committed change as -old/+new rows with a timestamp, in commit
 * order; as a cursor (FETCH), as COPY … TO STDOUT for psql, and as an endless
 * result for drivers that stream. LISTEN sluice_<view>_changes for tools that poll.
 */
describe('SUBSCRIBE', () => {
  let sluice: RunningSluice;
  let writer: pg.Client;

  const textRows = { getTypeParser: () => (v: string) => v };

  beforeAll(async () => {
    sluice = await startSluice();
    writer = await sluice.client();
    await writer.query('CREATE STREAM clicks (url text, ms int)');
    await writer.query('CREATE VIEW per_url AS SELECT url, count(*), sum(ms) FROM clicks GROUP BY url');
    await writer.query("INSERT INTO clicks VALUES ('/a', 1), ('/b', 2)");
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('a cursor gives the view as it is, then each committed change as -old and +new with one timestamp per transaction', async () => {
    const reader = await sluice.client();
    await reader.query('BEGIN');
    await reader.query('DECLARE c CURSOR FOR SUBSCRIBE per_url');
    const snapshot = (await reader.query({ text: 'FETCH ALL c', types: textRows })).rows as SubscriptionRow[];
    expect(snapshot.map(({ mz_timestamp: _, ...r }) => r).sort((x, y) => String(x.url).localeCompare(String(y.url)))).toEqual([
      { mz_diff: '1', url: '/a', count: '1', sum: '1' },
      { mz_diff: '1', url: '/b', count: '1', sum: '2' },
    ]);
    await writer.query("INSERT INTO clicks VALUES ('/a', 5), ('/c \"quoted\", with comma', 3)");
    // A transaction rolled back changes nothing a subscriber sees; one committed does.
    await writer.query('BEGIN');
    await writer.query("INSERT INTO clicks VALUES ('/a', 100)");
    await writer.query('ROLLBACK');
    await writer.query('BEGIN');
    await writer.query("INSERT INTO clicks VALUES ('/b', 10)");
    await writer.query("INSERT INTO clicks VALUES ('/b', 20)");
    await writer.query('COMMIT');
    const changes = await fetchUntil(reader, 'c', (rows) => rows.length >= 5);
    expect(changes.map(({ mz_timestamp: _, ...r }) => r)).toEqual([
      { mz_diff: '-1', url: '/a', count: '1', sum: '1' },
      { mz_diff: '1', url: '/a', count: '2', sum: '6' },
      { mz_diff: '1', url: '/c "quoted", with comma', count: '1', sum: '3' },
      { mz_diff: '-1', url: '/b', count: '1', sum: '2' },
      { mz_diff: '1', url: '/b', count: '3', sum: '32' },
    ]);
    const [first, second] = [changes[0].mz_timestamp, changes[3].mz_timestamp].map(Number);
    expect(new Set(changes.slice(0, 3).map((r) => r.mz_timestamp)).size).toBe(1);
    expect(second).toBeGreaterThan(first);
    expect(first).toBeGreaterThan(Number(snapshot[0].mz_timestamp));
    // Nothing more: a FETCH with a timeout returns what there is, here nothing.
    const empty = await reader.query("FETCH ALL c WITH (timeout = '100ms')");
    expect([empty.command, empty.rowCount]).toEqual(['FETCH', 0]);
    await reader.query('COMMIT');
    // The cursor ended with its transaction, as PostgreSQL's do.
    await expect(reader.query('FETCH ALL c')).rejects.toMatchObject({ code: '34000' });
  });

  it('applying the snapshot and every change gives the view, under four concurrent writers', async () => {
    await writer.query('CREATE STREAM orders (city text, qty int)');
    await writer.query('CREATE VIEW by_city AS SELECT city, count(*), sum(qty), max(qty) FROM orders GROUP BY city');
    await writer.query("INSERT INTO orders SELECT 'city' || (g % 50), g FROM generate_series(1, 500) g");
    const reader = await sluice.client();
    await reader.query('BEGIN');
    await reader.query('DECLARE feed CURSOR FOR SUBSCRIBE TO by_city WITH (SNAPSHOT = true)');
    const writers = await Promise.all([1, 2, 3, 4].map(() => sluice.client()));
    const fetched: SubscriptionRow[] = [];
    const writing = Promise.all(
      writers.map(async (w, i) => {
        for (let round = 0; round < 25; round++) {
          const explicit = round % 3 === 0;
          if (explicit) await w.query('BEGIN');
          await w.query(`INSERT INTO orders SELECT 'city' || ((g * ${i + 7} + ${round}) % 60), g FROM generate_series(1, 20) g`);
          if (explicit) await w.query(round % 2 ? 'COMMIT' : 'ROLLBACK');
        }
      }),
    );
    // Reading while they write, too.
    while (fetched.length < 200) fetched.push(...((await reader.query({ text: "FETCH 50 feed WITH (timeout = '1s')", types: textRows })).rows as SubscriptionRow[]));
    await writing;
    const expected = await viewState(writer, 'by_city');
    fetched.push(...(await fetchUntil(reader, 'feed', (rows) => sameState(foldSubscription([...fetched, ...rows]), expected))));
    expect(Object.fromEntries(foldSubscription(fetched))).toEqual(Object.fromEntries(expected));
    // Timestamps never go back.
    const times = fetched.map((r) => Number(r.mz_timestamp));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    await reader.query('COMMIT');
  });

  it('changes undone by ROLLBACK TO SAVEPOINT never reach a subscriber', async () => {
    const reader = await sluice.client();
    await reader.query('BEGIN');
    await reader.query('DECLARE c CURSOR FOR SUBSCRIBE per_url WITH (snapshot = false)');
    await writer.query('BEGIN');
    await writer.query("INSERT INTO clicks VALUES ('/sp-kept', 1)");
    await writer.query('SAVEPOINT s1');
    await writer.query("INSERT INTO clicks VALUES ('/sp-undone', 1)");
    await writer.query('ROLLBACK TO SAVEPOINT s1');
    await writer.query('SAVEPOINT s2');
    await writer.query("INSERT INTO clicks VALUES ('/sp-released', 1)");
    await writer.query('RELEASE s2');
    await writer.query('COMMIT');
    const rows = await fetchUntil(reader, 'c', (r) => r.length >= 2);
    expect(rows.map((r) => r.url).sort()).toEqual(['/sp-kept', '/sp-released']);
    expect((await writer.query("SELECT url FROM per_url WHERE url LIKE '/sp-%' ORDER BY url")).rows.map((r) => r.url)).toEqual(['/sp-kept', '/sp-released']);
    await reader.query('ROLLBACK');
  });

  it('WITH (snapshot = false) starts with the next change', async () => {
    const reader = await sluice.client();
    await reader.query('BEGIN');
    await reader.query('DECLARE c CURSOR FOR SUBSCRIBE per_url WITH (snapshot = false)');
    expect((await reader.query("FETCH ALL c WITH (timeout = '0s')")).rowCount).toBe(0);
    await writer.query("INSERT INTO clicks VALUES ('/z', 1)");
    const rows = await fetchUntil(reader, 'c', (r) => r.length >= 1);
    expect(rows.map(({ mz_timestamp: _, ...r }) => r)).toEqual([{ mz_diff: '1', url: '/z', count: '1', sum: '1' }]);
    await reader.query('ROLLBACK');
  });

  it('COPY (SUBSCRIBE …) TO STDOUT prints the view and its changes in psql, until Ctrl-C', async () => {
    const psql = spawn('psql', ['-X', '-q', '-c', 'COPY (SUBSCRIBE per_url) TO STDOUT', sluice.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    psql.stdout.on('data', (d) => (out += d));
    psql.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => psql.on('close', resolve));
    psql.on('error', (e) => (err += `psql is not installed (apt-get install postgresql-client): ${e.message}`));
    // Subscribed once its backend has read the snapshot.
    await waitFor(
      async () => (await writer.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'psql' AND query LIKE '%pg_current_snapshot%'")).rows[0].n,
      (n) => n === 1,
      20_000,
      `psql subscribed (stderr: ${err})`,
    );
    await writer.query("INSERT INTO clicks VALUES ('/tab\there', 4)");
    await writer.query("INSERT INTO clicks VALUES ('/tab\there', 5), ('/a', 1)");
    await new Promise((r) => setTimeout(r, 300));
    psql.kill('SIGINT');
    expect(await exited).not.toBe(0);
    expect(err).toContain('canceling statement due to user request');
    // psql writes COPY data as it comes (to a terminal at once; to a pipe, as its buffer fills or at exit).
    const lines = out.trim().split('\n').map((line) => line.split('\t'));
    // COPY text format: the tab inside the value is escaped, so each line has five fields.
    expect(lines.every((fields) => fields.length === 5)).toBe(true);
    const rows = lines.map(([ts, diff, url, count, sum]) => ({ mz_timestamp: ts, mz_diff: diff, url: url.replace('\\t', '\t'), count, sum }));
    expect(Object.fromEntries(foldSubscription(rows))).toEqual(Object.fromEntries(await viewState(writer, 'per_url')));
    // The last transaction changed two groups: both retractions, then both new rows, at one timestamp.
    const last = rows.slice(-4);
    expect(new Set(last.map((r) => r.mz_timestamp)).size).toBe(1);
    expect(last.map((r) => r.mz_diff)).toEqual(['-1', '-1', '1', '1']);
    expect(last.filter((r) => r.url === '/tab\there').map((r) => [r.mz_diff, r.count, r.sum])).toEqual([['-1', '1', '4'], ['1', '2', '9']]);
  });

  it('streams to node-postgres row by row as one endless result, until cancelled', async () => {
    const reader = await sluice.client();
    const received: SubscriptionRow[] = [];
    const query = reader.query(new pg.Query({ text: 'SUBSCRIBE per_url', types: textRows }));
    query.on('row', (row: SubscriptionRow) => received.push(row));
    const ended = new Promise<Error | undefined>((resolve) => {
      query.on('error', resolve);
      query.on('end', () => resolve(undefined));
    });
    const before = await viewState(writer, 'per_url');
    await waitFor(async () => received.length, (n) => n >= before.size, 10_000, 'snapshot rows');
    await writer.query("INSERT INTO clicks VALUES ('/a', 1000)");
    await waitFor(async () => received.length, (n) => n >= before.size + 2, 10_000, 'a change');
    expect(Object.fromEntries(foldSubscription(received))).toEqual(Object.fromEntries(await viewState(writer, 'per_url')));
    await cancelRequest(sluice.port, (reader as unknown as { processID: number }).processID, (reader as unknown as { secretKey: number }).secretKey);
    expect(await ended).toMatchObject({ code: '57014' });
    // The connection goes on.
    expect((await reader.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('a subscriber too far behind is told and disconnected; writers never wait for it', async () => {
    const reader = await sluice.client();
    const lost = new Promise<Error>((resolve) => reader.on('error', resolve));
    await reader.query('BEGIN');
    await reader.query('DECLARE slow CURSOR FOR SUBSCRIBE per_url WITH (snapshot = false, max_backlog_rows = 10)');
    const inserted = await writer.query("INSERT INTO clicks SELECT '/many' || g, g FROM generate_series(1, 50) g");
    expect(inserted.rowCount).toBe(50);
    expect(await lost).toMatchObject({ code: '53400', message: expect.stringContaining('fell more than 10 rows behind') });
    expect((await writer.query("SELECT count(*)::int AS n FROM per_url WHERE url LIKE '/many%'")).rows).toEqual([{ n: 50 }]);
  });

  it('refuses what it cannot follow with PostgreSQL errors, and the connection stays usable', async () => {
    const client = await sluice.client();
    await client.query('CREATE TABLE plain (x int)');
    await client.query('CREATE VIEW uniques AS SELECT count(DISTINCT url) FROM clicks');
    await expect(client.query('SUBSCRIBE nope')).rejects.toMatchObject({ code: '42P01', message: 'relation "nope" does not exist' });
    await expect(client.query('SUBSCRIBE plain')).rejects.toMatchObject({ code: '42809' });
    await expect(client.query('SUBSCRIBE uniques')).rejects.toMatchObject({ code: '0A000' });
    await expect(client.query('SUBSCRIBE (SELECT 1)')).rejects.toMatchObject({ code: '0A000' });
    await expect(client.query('SUBSCRIBE per_url WITH (progress)')).rejects.toMatchObject({ code: '0A000' });
    await expect(client.query('SUBSCRIBE per_url WITH (snapshot = maybe)')).rejects.toMatchObject({ code: '22023' });
    await expect(client.query('DECLARE c CURSOR FOR SUBSCRIBE per_url')).rejects.toMatchObject({ code: '25P01' });
    // Through the extended protocol (a parameter forces it), the cursor form is the way.
    await expect(client.query({ name: 'sub', text: 'SUBSCRIBE per_url' })).rejects.toMatchObject({ code: '0A000' });
    await client.query('BEGIN');
    await client.query('DECLARE c CURSOR FOR SUBSCRIBE per_url');
    await expect(client.query('DECLARE c CURSOR FOR SUBSCRIBE per_url')).rejects.toMatchObject({ code: '42P03' });
    await client.query('ROLLBACK');
    // Ordinary cursors are PostgreSQL's as before.
    await client.query('BEGIN');
    await client.query('DECLARE pgc CURSOR FOR SELECT g FROM generate_series(1, 3) g');
    expect((await client.query('FETCH 2 pgc')).rows).toEqual([{ g: 1 }, { g: 2 }]);
    await client.query('CLOSE pgc');
    await client.query('COMMIT');
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('FETCH through the extended protocol, and a dropped view ends its subscription with an error', async () => {
    await writer.query('CREATE VIEW doomed AS SELECT url, count(*) FROM clicks GROUP BY url');
    const reader = await sluice.client();
    await reader.query('BEGIN');
    // Without a snapshot the reader holds no lock on the view (with one, DROP waits for its transaction, as for any cursor).
    await reader.query('DECLARE d CURSOR FOR SUBSCRIBE doomed WITH (snapshot = false)');
    await writer.query("INSERT INTO clicks VALUES ('/d', 1)");
    const prepared = await reader.query({ name: 'fetch_d', text: "FETCH ALL d WITH (timeout = '1s')" });
    expect(prepared.rows.map(({ mz_timestamp: _, ...r }) => r)).toEqual([{ mz_diff: '1', url: '/d', count: '1' }]);
    expect(prepared.fields.map((f) => [f.name, f.dataTypeID])).toEqual([['mz_timestamp', 1700], ['mz_diff', 20], ['url', 25], ['count', 20]]);
    await writer.query('DROP VIEW doomed');
    await expect(reader.query("FETCH ALL d WITH (timeout = '1s')")).rejects.toMatchObject({ code: '42P01', message: expect.stringContaining('was dropped') });
    await reader.query('ROLLBACK');
  });

  it('LISTEN sluice_<view>_changes hears each committed transaction that changed the view', async () => {
    const listener = await sluice.client();
    const heard: { channel: string; payload?: string }[] = [];
    listener.on('notification', (n) => heard.push({ channel: n.channel, payload: n.payload }));
    await listener.query('LISTEN sluice_per_url_changes');
    await writer.query('BEGIN');
    await writer.query("INSERT INTO clicks VALUES ('/rolled-back', 1)");
    await writer.query('ROLLBACK');
    await writer.query("INSERT INTO clicks VALUES ('/n1', 1), ('/n2', 1)");
    await waitFor(async () => heard.length, (n) => n >= 1, 10_000, 'a notification');
    expect(heard).toEqual([{ channel: 'sluice_per_url_changes', payload: JSON.stringify({ view: 'public.per_url', changes: 2 }) }]);
    await listener.query('UNLISTEN *');
    await writer.query("INSERT INTO clicks VALUES ('/n3', 1)");
    await new Promise((r) => setTimeout(r, 200));
    expect(heard.length).toBe(1);
  });
});

function sameState(a: Map<string, number>, b: Map<string, number>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/** A CancelRequest, as psql's Ctrl-C sends it: a new connection naming the backend's pid and key. */
function cancelRequest(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      const message = Buffer.alloc(16);
      message.writeInt32BE(16, 0);
      message.writeInt32BE(80877102, 4);
      message.writeInt32BE(processId, 8);
      message.writeInt32BE(secretKey, 12);
      socket.end(message);
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}
