import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import net from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendFramer } from '../../connectors/postgres/backend-framer.ts';
import { ExternalStore } from '../../connectors/postgres/index.ts';
import { ResponseTracker } from '../../connectors/postgres/response-tracker.ts';
import { readErrorFields, scanBackendMessages } from '../../sql/wire/backend.ts';
import { adminClient, PG_ADMIN, PG_HOST, PG_PORT } from '../support/postgres.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

const ADMIN = PG_ADMIN;

/** A client whose connection may be cut by the server without failing the test run. */
async function tolerantClient(sluice: RunningSluice): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: sluice.url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function copyRows(client: pg.Client, sql: string, text: string): Promise<number> {
  const stream = client.query(copyFrom(sql));
  await pipeline(Readable.from([Buffer.from(text)]), stream);
  return stream.rowCount ?? -1;
}

async function copyOut(client: pg.Client, sql: string): Promise<string> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  await pipeline(client.query(copyTo(sql)), sink);
  return Buffer.concat(chunks).toString('utf8');
}

describe('Sluice on an external PostgreSQL', () => {
  const database = `sluice_test_${randomBytes(5).toString('hex')}`;
  const postgresUrl = `postgres://postgres@${PG_HOST}:${PG_PORT}/${database}`;
  let admin: pg.Client;
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    admin = await adminClient();
    await admin.query(`CREATE DATABASE ${database}`);
    sluice = await startSluice({ postgresUrl });
    client = await sluice.client();
    await client.query('CREATE FOREIGN TABLE clicks (url text, n int) SERVER pipelinedb');
    await client.query('CREATE VIEW v AS SELECT url, count(*), sum(n), avg(n) FROM clicks GROUP BY url');
  });

  afterAll(async () => {
    await sluice?.stop();
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('keeps streams and views in the external database', async () => {
    const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    expect(rows).toHaveLength(1);
    const direct = new pg.Client({ ...ADMIN, database });
    await direct.connect();
    try {
      expect((await direct.query("SELECT name FROM pipelinedb.views WHERE name = 'v'")).rows).toEqual([{ name: 'v' }]);
      expect((await direct.query("SELECT name FROM pipelinedb.streams WHERE name = 'clicks'")).rows).toEqual([{ name: 'clicks' }]);
    } finally {
      await direct.end();
    }
  });

  it('inserts with and without parameters and reads the view', async () => {
    expect((await client.query("INSERT INTO clicks VALUES ('/a', 1), ('/a', 3), ('/b', 2)")).rowCount).toBe(3);
    expect((await client.query('INSERT INTO clicks (url, n) VALUES ($1, $2)', ['/b', 4])).rowCount).toBe(1);
    const { rows } = await client.query('SELECT url, count, sum, avg FROM v ORDER BY url');
    expect(rows).toEqual([
      { url: '/a', count: '2', sum: '4', avg: '2.0000000000000000' },
      { url: '/b', count: '2', sum: '6', avg: '3.0000000000000000' },
    ]);
    const prepared = await client.query({ name: 'by_url', text: 'SELECT count FROM v WHERE url = $1', values: ['/a'] });
    expect(prepared.rows).toEqual([{ count: '2' }]);
  });

  it('copies into a stream and into an ordinary table, more than one CopyData chunk each', async () => {
    const lines = Array.from({ length: 12_000 }, (_, i) => `/copy\t${i % 10}\n`).join('');
    expect(lines.length).toBeGreaterThan(64 * 1024);
    expect(await copyRows(client, 'COPY clicks (url, n) FROM STDIN', lines)).toBe(12_000);
    expect((await client.query("SELECT count, sum FROM v WHERE url = '/copy'")).rows).toEqual([{ count: '12000', sum: String(12_000 * 4.5) }]);

    await client.query('CREATE TABLE plain (id int PRIMARY KEY, label text)');
    const csv = Array.from({ length: 10_000 }, (_, i) => `${i},"label ${i}, quoted"\n`).join('');
    expect(await copyRows(client, 'COPY plain FROM STDIN (FORMAT csv)', csv)).toBe(10_000);
    expect((await client.query('SELECT count(*)::int AS n, max(label) AS top FROM plain')).rows).toEqual([{ n: 10_000, top: 'label 9999, quoted' }]);
  });

  it('reports a COPY error with PostgreSQL\'s SQLSTATE and keeps the session usable', async () => {
    await expect(copyRows(client, 'COPY plain FROM STDIN (FORMAT csv)', '1,duplicate\n')).rejects.toMatchObject({ code: '23505' });
    await expect(copyRows(client, 'COPY plain FROM STDIN (FORMAT csv)', 'x,bad\n')).rejects.toMatchObject({ code: '22P02' });
    expect((await client.query('SELECT count(*)::int AS n FROM plain')).rows).toEqual([{ n: 10_000 }]);
  });

  it('forwards COPY TO STDOUT, large results and wide rows intact', async () => {
    const out = await copyOut(client, 'COPY (SELECT id, label FROM plain WHERE id < 3 ORDER BY id) TO STDOUT');
    expect(out).toBe('0\tlabel 0, quoted\n1\tlabel 1, quoted\n2\tlabel 2, quoted\n');
    const many = await client.query('SELECT g, md5(g::text) AS h FROM generate_series(1, 100000) g');
    expect(many.rowCount).toBe(100_000);
    expect(many.rows[99_999]).toEqual({ g: 100_000, h: createHash('md5').update('100000').digest('hex') });
    const wide = await client.query("SELECT repeat('x', 3000000) AS w, 'after' AS tail");
    expect(wide.rows[0].w).toHaveLength(3_000_000);
    expect(wide.rows[0].tail).toBe('after');
  });

  it('passes notices and errors through with their SQLSTATEs', async () => {
    const notices: string[] = [];
    client.on('notice', (n) => notices.push(n.message ?? ''));
    await client.query("DO $$ BEGIN RAISE NOTICE 'hello from upstream'; END $$");
    client.removeAllListeners('notice');
    expect(notices).toEqual(['hello from upstream']);
    await expect(client.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await expect(client.query('SELECT $1::int', ['nope'])).rejects.toMatchObject({ code: '22P02' });
    await expect(client.query('SELECT * FROM missing_table')).rejects.toMatchObject({ code: '42P01' });
    await client.query('BEGIN');
    await expect(client.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await client.query('ROLLBACK');
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('keeps two clients\' prepared statements of the same name apart', async () => {
    const a = await sluice.client();
    const b = await sluice.client();
    const forA = { name: 'S_1', text: 'SELECT $1::text AS who, count FROM v WHERE url = $2', values: ['a', '/a'] };
    const forB = { name: 'S_1', text: "SELECT 'other' AS y, $1::int + 1 AS n", values: [41] };
    for (let i = 0; i < 3; i++) {
      expect((await a.query(forA)).rows).toEqual([{ who: 'a', count: '2' }]);
      expect((await b.query(forB)).rows).toEqual([{ y: 'other', n: 42 }]);
    }
  });

  it('runs the two clients side by side, not one after the other', async () => {
    const a = await sluice.client();
    const b = await sluice.client();
    const started = Date.now();
    await Promise.all([a.query('SELECT pg_sleep(0.4)'), b.query('SELECT pg_sleep(0.4)')]);
    expect(Date.now() - started).toBeLessThan(750);
  });

  it('keeps a transaction invisible to another client until COMMIT', async () => {
    const a = await sluice.client();
    const b = await sluice.client();
    await a.query('CREATE TABLE tx_probe (x int)');
    await a.query('BEGIN');
    await a.query('INSERT INTO tx_probe VALUES (1)');
    await a.query("INSERT INTO clicks VALUES ('/tx', 5)");
    expect((await a.query("SELECT count FROM v WHERE url = '/tx'")).rows).toEqual([{ count: '1' }]);
    // Each client has its own upstream session, so b reads right away instead of waiting.
    expect((await b.query('SELECT count(*)::int AS n FROM tx_probe')).rows).toEqual([{ n: 0 }]);
    expect((await b.query("SELECT count FROM v WHERE url = '/tx'")).rows).toEqual([]);
    await a.query('COMMIT');
    expect((await b.query('SELECT count(*)::int AS n FROM tx_probe')).rows).toEqual([{ n: 1 }]);
    expect((await b.query("SELECT count FROM v WHERE url = '/tx'")).rows).toEqual([{ count: '1' }]);
  });

  it('answers extended-protocol batches that end with Flush, with a row limit', async () => {
    const raw = await RawClient.connect(sluice.port);
    try {
      const first = await raw.send(
        Buffer.concat([
          serialize.parse({ name: 'gen', text: 'SELECT g FROM generate_series(1, 5) g' }),
          serialize.bind({ statement: 'gen', portal: 'p' }),
          serialize.describe({ type: 'P', name: 'p' }),
          serialize.execute({ portal: 'p', rows: 2 }),
          serialize.flush(),
        ]),
        's',
      );
      expect(first.types).toEqual(['1', '2', 'T', 'D', 'D', 's']);
      const rest = await raw.send(Buffer.concat([serialize.execute({ portal: 'p' }), serialize.sync()]), 'Z');
      expect(rest.types).toEqual(['D', 'D', 'D', 'C', 'Z']);
      const failed = await raw.send(
        Buffer.concat([
          serialize.parse({ text: 'SELECT 1 / g FROM generate_series(1, 0, -1) g' }),
          serialize.bind({}),
          serialize.execute({}),
          serialize.parse({ text: 'SELECT 2' }),
          serialize.sync(),
        ]),
        'Z',
      );
      expect(failed.types).toEqual(['1', '2', 'D', 'E', 'Z']);
      const statement = await raw.send(Buffer.concat([serialize.describe({ type: 'S', name: 'gen' }), serialize.close({ type: 'S', name: 'gen' }), serialize.sync()]), 'Z');
      expect(statement.types).toEqual(['t', 'T', '3', 'Z']);
    } finally {
      raw.close();
    }
  });

  it('finds the end of every response however the bytes are chunked', async () => {
    const store = new ExternalStore(postgresUrl);
    const upstream = await store.connect();
    const session = await upstream.acquire();
    const batches = [
      serialize.query("SELECT g, repeat('y', g) FROM generate_series(1, 40) g; SELECT 1/0"),
      serialize.query("COPY (SELECT g FROM generate_series(1, 30) g) TO STDOUT; DO $$ BEGIN RAISE NOTICE 'n'; END $$"),
      Buffer.concat([
        serialize.parse({ name: 'q', text: 'SELECT $1::int + g AS s FROM generate_series(1, 3) g' }),
        serialize.describe({ type: 'S', name: 'q' }),
        serialize.bind({ statement: 'q', values: ['10'] }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
      ]),
      Buffer.concat([serialize.parse({ text: 'SELECT nope' }), serialize.bind({}), serialize.execute({}), serialize.sync()]),
      Buffer.concat([serialize.bind({ statement: 'q', values: ['1'] }), serialize.execute({ rows: 1 })]),
      serialize.sync(),
      // Sluice runs COPY FROM STDIN itself; one that reaches forward() is refused, not left hanging.
      serialize.query('COPY plain FROM STDIN'),
    ];
    try {
      for (const request of batches) {
        const response = await session.forward(request);
        const spans = scanBackendMessages(response);
        expect(spans[spans.length - 1].end).toBe(response.length);
        expect(spans.map((span) => span.type)).not.toContain('G');
        for (const size of [1, 2, 3, 5, 7, 13, 4096]) {
          const tracker = new ResponseTracker(request);
          const framer = new BackendFramer();
          const seen: Buffer[] = [];
          let completeAfter = -1;
          for (let offset = 0; offset < response.length; offset += size) {
            framer.push(response.subarray(offset, offset + size), (buf, start, end) => {
              expect(tracker.complete).toBe(false);
              seen.push(Buffer.from(buf.subarray(start, end)));
              tracker.take(buf[start]);
              if (tracker.complete) completeAfter = seen.length;
            });
          }
          expect(completeAfter).toBe(spans.length);
          expect(Buffer.concat(seen).equals(response)).toBe(true);
        }
      }
      const refused = await session.forward(serialize.query('COPY plain FROM STDIN'));
      expect(scanBackendMessages(refused).map((span) => span.type)).toEqual(['E', 'Z']);
      expect(readErrorFields(refused, 0, refused.length).code).toBe('57014');
      expect((await session.conn.query('SELECT count(*)::int AS n FROM plain')).rows).toEqual([['10000']]);
    } finally {
      session.release();
      await upstream.close();
      await store.close();
    }
  });

  it('serves correctly when the upstream\'s bytes arrive a few at a time', async () => {
    const proxy = await ChunkingProxy.start(PG_HOST, PG_PORT);
    const chunked = await startSluice({ postgresUrl: `postgres://postgres@127.0.0.1:${proxy.port}/${database}` });
    try {
      const c = await chunked.client();
      await c.query('CREATE STREAM chunky (k text, x int)');
      await c.query('CREATE VIEW chunky_v AS SELECT k, count(*), sum(x) FROM chunky GROUP BY k');
      await c.query('INSERT INTO chunky VALUES ($1, $2), ($1, $3)', ['k', 1, 2]);
      expect(await copyRows(c, 'COPY chunky FROM STDIN', 'k\t3\nj\t4\n')).toBe(2);
      expect((await c.query('SELECT k, count, sum FROM chunky_v ORDER BY k')).rows).toEqual([
        { k: 'j', count: '1', sum: '4' },
        { k: 'k', count: '3', sum: '6' },
      ]);
      expect((await c.query({ name: 'p', text: 'SELECT g FROM generate_series(1, $1::int) g', values: [300] })).rowCount).toBe(300);
      await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
      expect(await copyOut(c, 'COPY (SELECT 1, 2) TO STDOUT')).toBe('1\t2\n');
      expect(proxy.pieces).toBeGreaterThan(1000);
    } finally {
      await chunked.stop();
      await proxy.close();
    }
  });

  it('cancels a running statement upstream', async () => {
    const victim = await sluice.client();
    const running = victim.query('SELECT pg_sleep(30)');
    await new Promise((r) => setTimeout(r, 300));
    const { processID, secretKey } = victim as unknown as { processID: number; secretKey: number };
    await sendCancel(sluice.port, processID, secretKey);
    await expect(running).rejects.toMatchObject({ code: '57014' });
    expect((await victim.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
  });

  it('tells an idle client at once that its upstream session was terminated (57P01, as PostgreSQL does), and keeps serving others', async () => {
    const victim = new pg.Client({ connectionString: sluice.url });
    // The FATAL ErrorResponse comes first, then pg's own "Connection terminated".
    const told = new Promise<unknown>((resolve) => victim.on('error', resolve));
    await victim.connect();
    const pid = Number((await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    expect(pid).toBe((victim as unknown as { processID: number }).processID);
    const ended = new Promise<void>((resolve) => victim.once('end', () => resolve()));
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await expect(told).resolves.toMatchObject({ code: '57P01', message: 'terminating connection due to administrator command' });
    await ended;
    const fresh = await sluice.client();
    expect((await fresh.query("SELECT count FROM v WHERE url = '/a'")).rows).toEqual([{ count: '2' }]);
  });

  it('fails a statement whose upstream dies while it runs, and keeps serving others', async () => {
    const victim = await tolerantClient(sluice);
    const pid = Number((await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    const running = victim.query('SELECT pg_sleep(30)');
    await new Promise((r) => setTimeout(r, 200));
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await expect(running).rejects.toMatchObject({ code: '57P01' });
    expect((await client.query('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);
  });

  it('keeps the view\'s rows across a restart of Sluice on the same database', async () => {
    await sluice.stop();
    sluice = await startSluice({ postgresUrl });
    client = await sluice.client();
    expect((await client.query('SELECT url, count, sum FROM v ORDER BY url')).rows).toEqual([
      { url: '/a', count: '2', sum: '4' },
      { url: '/b', count: '2', sum: '6' },
      { url: '/copy', count: '12000', sum: '54000' },
      { url: '/tx', count: '1', sum: '5' },
    ]);
    expect((await client.query('SELECT k, count FROM chunky_v ORDER BY k')).rows).toEqual([
      { k: 'j', count: '1' },
      { k: 'k', count: '3' },
    ]);
    await client.query("INSERT INTO clicks VALUES ('/a', 10)");
    expect((await client.query("SELECT count, sum FROM v WHERE url = '/a'")).rows).toEqual([{ count: '3', sum: '14' }]);
  });
});

describe('connecting to the external PostgreSQL', () => {
  it('says which URL failed and how to fix it when nothing listens there', async () => {
    const port = await unusedPort();
    await expect(new ExternalStore(`postgres://postgres@127.0.0.1:${port}/nowhere`).connect()).rejects.toMatchObject({
      code: '08001',
      message: expect.stringContaining(`postgres://postgres@127.0.0.1:${port}/nowhere`),
      hint: expect.stringContaining('pg_ctlcluster'),
    });
  });

  it('passes on PostgreSQL\'s refusal (unknown database) with its SQLSTATE', async () => {
    await (await adminClient()).end();
    await expect(new ExternalStore(`postgres://postgres@${PG_HOST}:${PG_PORT}/sluice_no_such_db`).connect()).rejects.toMatchObject({
      code: '3D000',
      message: expect.stringContaining('sluice_no_such_db'),
    });
  });

  it('rejects a malformed URL or TLS mode before connecting', () => {
    expect(() => new ExternalStore('mysql://u:secret@h/db')).toThrow(/postgres:\/\//);
    expect(() => new ExternalStore('mysql://u:secret@h/db')).not.toThrow(/secret/);
    expect(() => new ExternalStore('postgres://h/db?sslmode=require')).toThrow(/sslmode=require/);
  });

  for (const method of ['cleartext', 'md5', 'scram'] as const) {
    it(`authenticates with ${method} passwords and reports a wrong one as 28P01`, async () => {
      const server = await StubServer.start(method, 'sluice', 's3cret:p@ss');
      try {
        const store = new ExternalStore(`postgres://sluice:${encodeURIComponent('s3cret:p@ss')}@127.0.0.1:${server.port}/db`);
        const client = await store.connect();
        await client.close();
        expect(server.authenticated).toBe(1);
        await expect(new ExternalStore(`postgres://sluice:wrong@127.0.0.1:${server.port}/db`).connect()).rejects.toMatchObject({ code: '28P01' });
        await expect(new ExternalStore(`postgres://sluice@127.0.0.1:${server.port}/db`).connect()).rejects.toMatchObject({
          code: '28P01',
          hint: expect.stringContaining('PGPASSWORD'),
        });
      } finally {
        await server.close();
      }
    });
  }
});

// ── helpers ───────────────────────────────────────────────────────────────

function unusedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(serialize.cancel(processId, secretKey)));
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

/**
 * A TCP proxy to PostgreSQL that hands the server's bytes on in pieces of
 * 1–9 bytes, one per turn of the event loop, so Sluice sees them as separate
 * chunks that split headers and messages everywhere.
 */
class ChunkingProxy {
  pieces = 0;
  private readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server) {}

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  static async start(host: string, port: number): Promise<ChunkingProxy> {
    const server = net.createServer();
    const proxy = new ChunkingProxy(server);
    server.on('connection', (client) => proxy.relay(client, net.connect(port, host)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  private relay(client: net.Socket, upstream: net.Socket): void {
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    let relayed: Promise<void> = Promise.resolve();
    upstream.on('data', (chunk: Buffer) => {
      upstream.pause();
      relayed = relayed.then(async () => {
        for (let offset = 0; offset < chunk.length; ) {
          const size = 1 + Math.floor(Math.random() * 9);
          client.write(chunk.subarray(offset, offset + size));
          offset += size;
          this.pieces++;
          await new Promise((resolve) => setImmediate(resolve));
        }
        upstream.resume();
      });
    });
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Speaks the protocol to Sluice byte by byte, to check batches node-postgres never sends. */
class RawClient {
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiter?.();
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const client = new RawClient(socket);
    await client.send(serialize.startup({ user: 'raw', database: 'sluice' }), 'Z');
    return client;
  }

  /** Sends `request` and collects backend messages up to the first of type `until`. */
  async send(request: Buffer, until: string): Promise<{ types: string[] }> {
    this.socket.write(request);
    for (;;) {
      const spans = scanBackendMessages(this.buffered);
      const stop = spans.findIndex((span) => span.type === until);
      if (stop >= 0) {
        this.buffered = this.buffered.subarray(spans[stop].end);
        return { types: spans.slice(0, stop + 1).map((span) => span.type) };
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  close(): void {
    this.socket.end(serialize.end());
  }
}

/**
 * A stand-in PostgreSQL that only authenticates: it checks cleartext, MD5 and
 * SCRAM-SHA-256 (server side, computed independently) and then reports ready.
 */
class StubServer {
  authenticated = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(method: 'cleartext' | 'md5' | 'scram', user: string, password: string): Promise<StubServer> {
    let stub: StubServer | undefined;
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      void authenticate(socket, method, user, password).then((ok) => {
        if (!ok) {
          socket.end(stubError('28P01', `password authentication failed for user "${user}"`));
          return;
        }
        stub!.authenticated++;
        socket.write(Buffer.concat([authMessage(0), stubMessage('K', Buffer.from([0, 0, 0, 7, 0, 0, 0, 9])), stubMessage('Z', Buffer.from('I'))]));
        socket.on('data', (chunk: Buffer) => {
          if (chunk[0] === 0x58) socket.end();
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stub = new StubServer(server, (server.address() as net.AddressInfo).port);
    return stub;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function authenticate(socket: net.Socket, method: 'cleartext' | 'md5' | 'scram', user: string, password: string): Promise<boolean> {
  const incoming = messageReader(socket);
  await incoming.startup();
  if (method === 'cleartext') {
    socket.write(authMessage(3));
    return (await incoming.next()).body.toString('utf8').replace(/\0$/, '') === password;
  }
  if (method === 'md5') {
    const salt = randomBytes(4);
    socket.write(authMessage(5, salt));
    const inner = createHash('md5').update(password + user).digest('hex');
    const expected = 'md5' + createHash('md5').update(inner).update(salt).digest('hex');
    return (await incoming.next()).body.toString('utf8').replace(/\0$/, '') === expected;
  }
  socket.write(authMessage(10, Buffer.from('SCRAM-SHA-256\0\0')));
  const initial = (await incoming.next()).body;
  const mechanismEnd = initial.indexOf(0);
  const clientFirst = initial.toString('utf8', mechanismEnd + 5);
  const clientFirstBare = clientFirst.replace(/^n,,/, '');
  const clientNonce = /r=([^,]+)/.exec(clientFirstBare)![1];
  const salt = randomBytes(16);
  const iterations = 4096;
  const serverFirst = `r=${clientNonce}${randomBytes(12).toString('base64')},s=${salt.toString('base64')},i=${iterations}`;
  socket.write(authMessage(11, Buffer.from(serverFirst)));
  const clientFinal = (await incoming.next()).body.toString('utf8');
  const withoutProof = clientFinal.replace(/,p=[^,]*$/, '');
  const proof = Buffer.from(/,p=([^,]*)$/.exec(clientFinal)![1], 'base64');
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const mac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();
  const storedKey = createHash('sha256').update(mac(salted, 'Client Key')).digest();
  const authText = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = mac(storedKey, authText);
  const clientKey = Buffer.from(proof.map((byte, i) => byte ^ signature[i]));
  if (!createHash('sha256').update(clientKey).digest().equals(storedKey)) return false;
  socket.write(authMessage(12, Buffer.from(`v=${mac(mac(salted, 'Server Key'), authText).toString('base64')}`)));
  return true;
}

function messageReader(socket: net.Socket): { startup(): Promise<void>; next(): Promise<{ type: string; body: Buffer }> } {
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  });
  const take = async (headerLength: number): Promise<Buffer> => {
    for (;;) {
      if (buffered.length >= headerLength) {
        const length = buffered.readInt32BE(headerLength - 4) + headerLength - 4;
        if (buffered.length >= length) {
          const message = buffered.subarray(0, length);
          buffered = buffered.subarray(length);
          return message;
        }
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return {
    startup: async () => void (await take(4)),
    next: async () => {
      const message = await take(5);
      return { type: String.fromCharCode(message[0]), body: message.subarray(5) };
    },
  };
}

function stubMessage(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = type.charCodeAt(0);
  header.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}

function authMessage(code: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.alloc(4 + data.length);
  body.writeInt32BE(code, 0);
  data.copy(body, 4);
  return stubMessage('R', body);
}

function stubError(code: string, message: string): Buffer {
  return stubMessage('E', Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`));
}
