import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * Every client its own PostgreSQL backend (issue: the serving store is a real
 * PostgreSQL server): what one client does to its session — a transaction left
 * open, a slow query, a lock, SET, temp tables, cancel, timeouts — is its own,
 * and never holds up another client or ingest. Asserted by what completes
 * while what, not by how fast.
 */

const run = promisify(execFile);
let sluice: RunningSluice;
let admin: pg.Client;

function connect(options: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  return (async () => {
    const client = new pg.Client({ connectionString: sluice.url, ...options });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  })();
}

async function psql(args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run('psql', ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(sluice.port), '-U', 'sluice', ...args], { env: { ...process.env, ...env } });
  return stdout.trim();
}

async function count(view: string): Promise<number> {
  return Number((await admin.query(`SELECT coalesce(sum(count), 0)::int8 AS n FROM ${view}`)).rows[0].n);
}

function backendPid(client: pg.Client): number {
  return (client as unknown as { processID: number }).processID;
}

beforeAll(async () => {
  sluice = await startSluice();
  admin = await sluice.client();
  await admin.query('CREATE FOREIGN TABLE hits (url text, n int) SERVER pipelinedb');
  await admin.query('CREATE VIEW per_url AS SELECT url, count(*), sum(n) FROM hits GROUP BY url');
  await admin.query('CREATE TABLE unrelated (x int)');
}, 60_000);

afterAll(() => sluice?.stop({ removeData: true }));

describe('nothing one client does holds up ingest or other clients', () => {
  it('a client idle in a transaction: 200 INSERTs from another client complete while it stays open, and the view is current after each', async () => {
    const holder = await connect();
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const seenAtStart = Number((await holder.query("SELECT coalesce(sum(count), 0)::int8 AS n FROM per_url WHERE url LIKE '/idle%'")).rows[0].n);
    const writer = await connect();
    for (let i = 1; i <= 200; i++) {
      await writer.query(`INSERT INTO hits VALUES ('/idle${i % 10}', ${i})`);
      if (i % 50 === 0) expect(Number((await writer.query("SELECT sum(count)::int8 AS n FROM per_url WHERE url LIKE '/idle%'")).rows[0].n)).toBe(i);
    }
    // The holder's snapshot is its own: a real session of its own, still open.
    expect(Number((await holder.query("SELECT coalesce(sum(count), 0)::int8 AS n FROM per_url WHERE url LIKE '/idle%'")).rows[0].n)).toBe(seenAtStart);
    await holder.query('COMMIT');
    await Promise.all([holder.end(), writer.end()]);
  });

  it('a slow query (pg_sleep) in one client delays neither other clients nor inserts into streams', async () => {
    const slow = await connect();
    let slowDone = false;
    const sleeping = slow.query('SELECT pg_sleep(3)').then(() => (slowDone = true));
    await new Promise((r) => setTimeout(r, 200));
    const other = await connect();
    for (let i = 0; i < 20; i++) {
      await other.query("INSERT INTO hits VALUES ('/slow', 1)");
      expect((await other.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    }
    expect(slowDone).toBe(false);
    expect(await count("per_url WHERE url = '/slow'")).toBe(20);
    await sleeping;
    await Promise.all([slow.end(), other.end()]);
  });

  it('a lock held on an unrelated table does not delay stream inserts, and lock_timeout works per client', async () => {
    const locker = await connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE unrelated IN ACCESS EXCLUSIVE MODE');
    const other = await connect();
    await other.query("INSERT INTO hits VALUES ('/locked', 1), ('/locked', 2)");
    expect(await count("per_url WHERE url = '/locked'")).toBe(2);
    await other.query("SET lock_timeout = '200ms'");
    await expect(other.query('SELECT * FROM unrelated')).rejects.toMatchObject({ code: '55P03' });
    await locker.query('COMMIT');
    expect((await other.query('SELECT count(*)::int AS n FROM unrelated')).rows).toEqual([{ n: 0 }]);
    await Promise.all([locker.end(), other.end()]);
  });

  it('writes into one view from several sessions at once stay exact', async () => {
    const writers = await Promise.all(Array.from({ length: 4 }, () => connect()));
    await Promise.all(
      writers.map(async (w, k) => {
        for (let i = 0; i < 25; i++) {
          const rows = Array.from({ length: 40 }, (_, j) => `('/many${(i * 7 + j + k) % 50}', 1)`);
          await w.query(`INSERT INTO hits VALUES ${rows.join(', ')}`);
        }
      }),
    );
    expect(await count("per_url WHERE url LIKE '/many%'")).toBe(4 * 25 * 40);
    expect(Number((await admin.query("SELECT count(*)::int AS n FROM per_url WHERE url LIKE '/many%'")).rows[0].n)).toBe(50);
    await Promise.all(writers.map((w) => w.end()));
  });

  it('sketch views (hll_agg) written by several sessions at once lose no batch, also when they create the same group', async () => {
    await admin.query('CREATE VIEW visitors AS SELECT url, hll_agg(n) AS users FROM hits GROUP BY url');
    const writers = await Promise.all(Array.from({ length: 8 }, () => connect()));
    for (let round = 0; round < 5; round++) {
      await Promise.all(writers.map((w, k) => w.query(`INSERT INTO hits VALUES ('/sketch${round}', ${k})`)));
    }
    const uniques = (await admin.query("SELECT hll_cardinality(users) AS n FROM visitors WHERE url LIKE '/sketch%' ORDER BY url")).rows.map((r) => Number(r.n));
    // Eight distinct values per group: HyperLogLog counts that few exactly.
    expect(uniques).toEqual([8, 8, 8, 8, 8]);
    await Promise.all(writers.map((w) => w.end()));
  });
});

describe('session state is per client', () => {
  it('SET TimeZone, search_path and DateStyle are seen by the client that set them only; a new client sees the defaults', async () => {
    const tokyo = await connect();
    const york = await connect();
    await admin.query('CREATE SCHEMA IF NOT EXISTS mine');
    await tokyo.query("SET TimeZone = 'Asia/Tokyo'");
    await tokyo.query('SET search_path = mine, public');
    await tokyo.query("SET DateStyle = 'German'");
    await york.query("SET TimeZone = 'America/New_York'");
    const stamp = "SELECT '2026-01-01 00:00:00+00'::timestamptz::text AS t, current_setting('search_path') AS path";
    expect((await tokyo.query(stamp)).rows).toEqual([{ t: '01.01.2026 09:00:00 JST', path: 'mine, public' }]);
    expect((await york.query(stamp)).rows).toEqual([{ t: '2025-12-31 19:00:00-05', path: '"$user", public' }]);
    const fresh = await connect();
    expect((await fresh.query(stamp)).rows).toEqual([{ t: '2026-01-01 00:00:00+00', path: '"$user", public' }]);
    await Promise.all([tokyo.end(), york.end(), fresh.end()]);
  });

  it('startup parameters reach the session: PGOPTIONS -c intervalstyle/extra_float_digits, application_name, options in the conninfo', async () => {
    const out = await psql(['sluice', '-c', "SELECT interval '3 days', 1.1::float8 * 3, current_setting('application_name')"], {
      PGOPTIONS: '-c intervalstyle=postgres_verbose -c extra_float_digits=0',
      PGAPPNAME: 'golden-psql',
    });
    expect(out).toBe('@ 3 days|3.3|golden-psql');
    const timeout = await psql(['dbname=sluice options=--statement_timeout=1234', '-c', 'SHOW statement_timeout']);
    expect(timeout).toBe('1234ms');
    const client = await connect({ application_name: 'my-dashboard', options: '-c TimeZone=Europe/Paris' } as pg.ClientConfig);
    expect((await client.query('SELECT current_setting($1) AS tz, current_database() AS db', ['TimeZone'])).rows).toEqual([{ tz: 'Europe/Paris', db: 'sluice' }]);
    await client.end();
  });

  it('a transform renders timestamps in the writing session\'s TimeZone, also after it changes with SET', async () => {
    await admin.query('CREATE STREAM stamps (ts timestamptz)');
    await admin.query('CREATE STREAM stamp_texts (t text)');
    await admin.query('CREATE VIEW seen_stamps AS SELECT t, count(*) FROM stamp_texts GROUP BY t');
    await admin.query("CREATE VIEW render_stamps WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('stamp_texts')) AS SELECT ts AS t FROM stamps");
    const writer = await connect();
    await writer.query("INSERT INTO stamps VALUES ('2026-01-01 00:00:00+00')");
    await writer.query("SET TimeZone = 'Asia/Tokyo'");
    await writer.query("INSERT INTO stamps VALUES ('2026-01-01 00:00:00+00')");
    expect((await admin.query('SELECT t, count::int FROM seen_stamps ORDER BY t')).rows).toEqual([
      { t: '2026-01-01 00:00:00+00', count: 1 },
      { t: '2026-01-01 09:00:00+09', count: 1 },
    ]);
    await writer.end();
  });

  it('pg_stat_activity has one row per client with its application_name, and pg_backend_pid() is the key the client was given', async () => {
    const names = ['grafana', 'metabase', 'dbeaver'];
    const clients = await Promise.all(names.map((application_name) => connect({ application_name })));
    for (const client of clients) expect(Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)).toBe(backendPid(client));
    const rows = (await admin.query('SELECT application_name FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY application_name', [clients.map(backendPid)])).rows;
    expect(rows.map((r) => r.application_name)).toEqual(['dbeaver', 'grafana', 'metabase']);
    await Promise.all(clients.map((c) => c.end()));
  });

  it('temp tables, SQL PREPARE and WITH HOLD cursors belong to the client that made them', async () => {
    const a = await connect();
    const b = await connect();
    await a.query('CREATE TEMP TABLE scratch AS SELECT 1 AS x');
    await a.query('PREPARE twice(int) AS SELECT $1 * 2 AS y');
    await a.query('BEGIN');
    await a.query('DECLARE held CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 5) g');
    await a.query('COMMIT');
    await expect(b.query('SELECT * FROM scratch')).rejects.toMatchObject({ code: '42P01' });
    await expect(b.query('EXECUTE twice(2)')).rejects.toMatchObject({ code: '26000' });
    await expect(b.query('FETCH 2 FROM held')).rejects.toMatchObject({ code: '34000' });
    expect((await a.query('EXECUTE twice(21)')).rows).toEqual([{ y: 42 }]);
    expect((await a.query('FETCH 2 FROM held')).rows).toEqual([{ g: 1 }, { g: 2 }]);
    expect((await a.query('SELECT x FROM scratch')).rows).toEqual([{ x: 1 }]);
    await Promise.all([a.end(), b.end()]);
  });

  it('LISTEN/NOTIFY crosses clients, and advisory locks are held per session', async () => {
    const listener = await connect();
    const notifier = await connect();
    const heard = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
    await listener.query('LISTEN sluice_test');
    await notifier.query("NOTIFY sluice_test, 'hello'");
    expect(await heard).toMatchObject({ channel: 'sluice_test', payload: 'hello' });
    expect((await listener.query('SELECT pg_try_advisory_lock(42) AS got')).rows).toEqual([{ got: true }]);
    expect((await notifier.query('SELECT pg_try_advisory_lock(42) AS got')).rows).toEqual([{ got: false }]);
    await Promise.all([listener.end(), notifier.end()]);
    const later = await connect();
    expect((await later.query('SELECT pg_try_advisory_lock(42) AS got')).rows).toEqual([{ got: true }]);
    await later.end();
  });

  it('the database the client names is the one it is in; one that does not exist is 3D000', async () => {
    expect(await psql(['sluice', '-c', 'SELECT current_database()'])).toBe('sluice');
    expect(await psql(['postgres', '-c', 'SELECT current_database()'])).toBe('postgres');
    const stranger = new pg.Client({ host: '127.0.0.1', port: sluice.port, user: 'sluice', database: 'no_such_db' });
    await expect(stranger.connect()).rejects.toMatchObject({ code: '3D000', message: 'database "no_such_db" does not exist' });
  });
});

describe('cancel and timeouts reach the client\'s own backend', () => {
  it('psql Ctrl-C (a CancelRequest to Sluice) stops pg_sleep(10) with 57014', async () => {
    const child = spawn('psql', ['-X', '-h', '127.0.0.1', '-p', String(sluice.port), '-U', 'sluice', 'sluice', '-c', 'SELECT pg_sleep(10)'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await waitForSleeper();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).not.toBe(0);
    expect(stderr).toContain('canceling statement due to user request');
  });

  it('statement_timeout stops pg_sleep(10) with 57014, and pg_cancel_backend from another client works', async () => {
    const client = await connect();
    await client.query("SET statement_timeout = '200ms'");
    await expect(client.query('SELECT pg_sleep(10)')).rejects.toMatchObject({ code: '57014', message: 'canceling statement due to statement timeout' });
    await client.query('RESET statement_timeout');
    // The outcome is taken at once, so the rejection is never unhandled while the cancel is on its way.
    const sleeping = client.query('SELECT pg_sleep(10)').then(
      () => ({ code: 'finished', message: '' }),
      (err: { code?: string; message: string }) => ({ code: err.code, message: err.message }),
    );
    await waitForSleeper();
    expect((await admin.query('SELECT pg_cancel_backend($1) AS ok', [backendPid(client)])).rows).toEqual([{ ok: true }]);
    expect(await sleeping).toEqual({ code: '57014', message: 'canceling statement due to user request' });
    expect((await client.query('SELECT 1 AS still')).rows).toEqual([{ still: 1 }]);
    await client.end();
  });

  it('an INSERT into a stream stopped by statement_timeout changes no view', async () => {
    const client = await connect();
    await client.query("SET statement_timeout = '300ms'");
    const before = await count("per_url WHERE url = '/timed'");
    await expect(client.query("INSERT INTO hits SELECT '/timed', g FROM generate_series(1, 20) g WHERE pg_sleep(0.05)::text = ''")).rejects.toMatchObject({ code: '57014' });
    expect(await count("per_url WHERE url = '/timed'")).toBe(before);
    await client.query('RESET statement_timeout');
    await client.query("INSERT INTO hits SELECT '/timed', g FROM generate_series(1, 20) g");
    expect(await count("per_url WHERE url = '/timed'")).toBe(before + 20);
    await client.end();
  });

  it('idle_in_transaction_session_timeout ends that client alone, with 25P03', async () => {
    const client = new pg.Client({ connectionString: sluice.url });
    const told = new Promise<Error & { code?: string }>((resolve) => client.on('error', resolve));
    await client.connect();
    await client.query("SET idle_in_transaction_session_timeout = '300ms'");
    await client.query('BEGIN');
    await client.query('SELECT 1');
    expect(await told).toMatchObject({ code: '25P03' });
    expect((await admin.query('SELECT 1 AS fine')).rows).toEqual([{ fine: 1 }]);
  });
});

describe('the server never stops answering', () => {
  it('a client that vanishes in the middle of COPY into a stream frees everything; the view is unchanged', async () => {
    const before = await count("per_url WHERE url = '/vanish'");
    const socket = await rawSession();
    socket.write(serialize.query('COPY hits (url, n) FROM STDIN'));
    await new Promise((r) => setTimeout(r, 100));
    socket.write(Buffer.concat([copyData('/vanish\t1\n/vanish\t2\n')]));
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
    await admin.query("INSERT INTO hits VALUES ('/after-vanish', 1)");
    expect(await count("per_url WHERE url = '/vanish'")).toBe(before);
    expect(await count("per_url WHERE url = '/after-vanish'")).toBe(1);
  });

  it('COPY … TO PROGRAM and a 10,000-term expression get an answer, and everyone else keeps being served', async () => {
    const client = await connect();
    const program = await client.query("COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'").then(
      (r) => r.command,
      (err: { code?: string }) => err.code,
    );
    expect(typeof program).toBe('string');
    const terms = Array.from({ length: 10_000 }, () => '1').join('+');
    const deep = await client.query(`CREATE VIEW deep AS SELECT count(*) FROM hits WHERE n < ${terms}`).then(
      () => 'created',
      (err: { code?: string }) => err.code,
    );
    expect(deep).toMatch(/^(created|54001|54000|42601)$/);
    expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    expect((await admin.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
    await client.end();
  });

  it('a client that sends Parse and never Sync (or half a message) holds up nobody', async () => {
    const parked = await rawSession();
    parked.write(serialize.parse({ text: 'SELECT 1' }));
    const halfway = await rawSession();
    halfway.write(serialize.query('SELECT 1').subarray(0, 7));
    const other = await connect();
    await other.query("INSERT INTO hits VALUES ('/parked', 1)");
    expect(await count("per_url WHERE url = '/parked'")).toBe(1);
    parked.destroy();
    halfway.destroy();
    await other.end();
  });
});

/** Waits until some client runs pg_sleep (so a cancel has something to stop). */
async function waitForSleeper(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const rows = (await admin.query("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(10)%'")).rows;
    if (rows.length) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no client started pg_sleep(10)');
}

/** A socket past startup, for sending protocol messages by hand. */
async function rawSession(): Promise<net.Socket> {
  const socket = net.connect(sluice.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.on('error', () => undefined);
  const ready = new Promise<void>((resolve) => {
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      if (seen.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
  });
  socket.write(serialize.startup({ user: 'sluice', database: 'sluice' }));
  await ready;
  return socket;
}

function copyData(text: string): Buffer {
  const body = Buffer.from(text);
  const header = Buffer.alloc(5);
  header[0] = 0x64;
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
