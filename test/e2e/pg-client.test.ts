import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/** The same scenarios as the golden files, through node-postgres and the extended protocol. */
describe('node-postgres over the wire', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await client.query('CREATE FOREIGN TABLE clicks (url text, user_id int, latency_ms float8) SERVER pipelinedb');
    await client.query('CREATE VIEW per_url AS SELECT url, count(*), sum(user_id), avg(latency_ms), max(latency_ms) FROM clicks GROUP BY url');
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('inserts with parameters and reads the view the moment the INSERT returns', async () => {
    const insert = await client.query('INSERT INTO clicks (url, user_id, latency_ms) VALUES ($1, $2, $3), ($4, $5, $6)', ['/p', 7, 1.5, '/p', 8, 2.5]);
    expect(insert.rowCount).toBe(2);
    const { rows } = await client.query('SELECT url, count, sum, avg, max FROM per_url WHERE url = $1', ['/p']);
    expect(rows).toEqual([{ url: '/p', count: '2', sum: '15', avg: 2, max: 2.5 }]);
  });

  it('reports PostgreSQL types for view columns (count bigint, sum(int4) bigint, avg(float8) float8)', async () => {
    const result = await client.query('SELECT count, sum, avg, max FROM per_url LIMIT 0');
    expect(result.fields.map((f) => f.dataTypeID)).toEqual([20, 20, 701, 701]);
  });

  it('runs a named prepared insert many times', async () => {
    for (let i = 0; i < 20; i++) {
      await client.query({ name: 'ins', text: 'INSERT INTO clicks VALUES ($1, $2, $3)', values: ['/prep', i, i / 2] });
    }
    const { rows } = await client.query({ name: 'read', text: 'SELECT count, sum FROM per_url WHERE url = $1', values: ['/prep'] });
    expect(rows).toEqual([{ count: '20', sum: String((19 * 20) / 2) }]);
  });

  it('keeps two clients\' prepared statements of the same name apart', async () => {
    const a = await sluice.client();
    const b = await sluice.client();
    await a.query('CREATE TABLE ta (x int)');
    await a.query("INSERT INTO ta VALUES (1)");
    await a.query({ name: 'S_1', text: 'SELECT x, $1::text AS who FROM ta', values: ['a'] });
    await b.query({ name: 'S_1', text: "SELECT 'other' AS y, $1::int + 1 AS n", values: [41] });
    for (let i = 0; i < 3; i++) {
      expect((await a.query({ name: 'S_1', text: 'SELECT x, $1::text AS who FROM ta', values: ['a'] })).rows).toEqual([{ x: 1, who: 'a' }]);
      expect((await b.query({ name: 'S_1', text: "SELECT 'other' AS y, $1::int + 1 AS n", values: [41] })).rows).toEqual([{ y: 'other', n: 42 }]);
    }
  });

  it('keeps one client\'s open transaction away from another client', async () => {
    const a = await sluice.client();
    const b = await sluice.client();
    await a.query('CREATE TABLE tx_probe (x int)');
    await a.query('BEGIN');
    await a.query('INSERT INTO tx_probe VALUES (1)');
    // b waits for a's transaction to end rather than joining it.
    const bRead = b.query('SELECT count(*)::int AS n FROM tx_probe');
    await new Promise((r) => setTimeout(r, 100));
    await a.query('ROLLBACK');
    expect((await bRead).rows).toEqual([{ n: 0 }]);
  });

  it('gives a bad value PostgreSQL\'s SQLSTATE and keeps the session usable', async () => {
    await expect(client.query('INSERT INTO clicks (url, user_id) VALUES ($1, $2)', ['/x', 'abc'])).rejects.toMatchObject({
      code: '22P02',
      message: 'invalid input syntax for type integer: "abc"',
    });
    await expect(client.query("INSERT INTO clicks (url, nope) VALUES ('/x', 1)")).rejects.toMatchObject({ code: '42703' });
    await expect(client.query('SELEC 1')).rejects.toMatchObject({ code: '42601' });
    await expect(client.query('SELECT * FROM clicks')).rejects.toMatchObject({ code: '42809' });
    const { rows } = await client.query("SELECT count FROM per_url WHERE url = '/x'");
    expect(rows).toEqual([]);
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('rejects a whole multi-row INSERT when one row is bad (nothing applied)', async () => {
    await expect(client.query("INSERT INTO clicks VALUES ('/atomic', 1, 1), ('/atomic', 99999999999, 2)")).rejects.toMatchObject({ code: '22003' });
    expect((await client.query("SELECT * FROM per_url WHERE url = '/atomic'")).rows).toEqual([]);
  });

  it('refuses unsupported constructs with 0A000 naming them', async () => {
    await expect(client.query('CREATE VIEW bad AS SELECT url, count(*) FROM clicks GROUP BY url ORDER BY url')).rejects.toMatchObject({
      code: '0A000',
      message: expect.stringContaining('ORDER BY'),
    });
    await expect(client.query("CREATE VIEW bad WITH (pk = 'url') AS SELECT count(*) FROM clicks")).rejects.toMatchObject({
      code: '0A000',
      message: expect.stringContaining('"pk"'),
    });
  });

  it('survives a client that sends garbage bytes', async () => {
    await new Promise<void>((resolve) => {
      const socket = net.connect(sluice.port, '127.0.0.1', () => {
        socket.write(Buffer.from([0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xfe]));
      });
      socket.on('data', () => undefined);
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
    await new Promise<void>((resolve) => {
      const socket = net.connect(sluice.port, '127.0.0.1', () => {
        // A valid startup, then a typed message with an absurd length.
        const params = Buffer.from('user\0bob\0\0', 'latin1');
        const startup = Buffer.alloc(8 + params.length);
        startup.writeInt32BE(startup.length, 0);
        startup.writeInt32BE(196608, 4);
        params.copy(startup, 8);
        socket.write(startup);
        socket.write(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff, 0x41]));
      });
      socket.on('data', () => undefined);
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
    expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  });
});
