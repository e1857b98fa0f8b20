import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * TTL views (PipelineDB): groups whose ttl_column is older than the TTL are
 * removed by the reaper. The engine's clock is controlled here, so expiry is
 * checked at chosen instants without sleeping.
 */
describe('TTL', () => {
  let sluice: RunningSluice;
  let client: pg.Client;
  let now = new Date('2026-11-21T12:00:00Z');

  beforeAll(async () => {
    sluice = await startSluice({ clock: () => now });
    client = await sluice.client();
    await client.query('CREATE STREAM orders (ts timestamptz, amount numeric)');
    await client.query("CREATE VIEW daily WITH (ttl = '2 days', ttl_column = 'day') AS SELECT date_trunc('day', ts) AS day, count(*), sum(amount) FROM orders GROUP BY day");
    await client.query("CREATE TABLE orders_t (ts timestamptz, amount numeric)");
  });
  afterAll(() => sluice.stop({ removeData: true }));

  async function days(): Promise<string[]> {
    return (await client.query("SELECT to_char(day AT TIME ZONE 'UTC', 'MM-DD') AS d FROM daily ORDER BY day")).rows.map((r) => r.d);
  }

  it('removes expired groups at each instant of a controlled clock, equal to the batch oracle', async () => {
    const rows = ['2026-11-17 10:00+00', '2026-11-18 09:00+00', '2026-11-19 23:59+00', '2026-11-20 00:00+00', '2026-11-21 08:00+00', '2026-11-21 11:00+00'];
    await client.query(`INSERT INTO orders VALUES ${rows.map((ts, i) => `('${ts}', ${i + 1})`).join(', ')}`);
    await client.query(`INSERT INTO orders_t VALUES ${rows.map((ts, i) => `('${ts}', ${i + 1})`).join(', ')}`);
    for (const instant of ['2026-11-21T12:00:00Z', '2026-11-22T00:00:01Z', '2026-11-23T06:00:00Z', '2026-11-25T00:00:00Z']) {
      now = new Date(instant);
      await client.query("SELECT pipelinedb.ttl_expire('daily')");
      const oracle = await client.query(
        `SELECT to_char(date_trunc('day', ts) AT TIME ZONE 'UTC', 'MM-DD') AS d, count(*), sum(amount) FROM orders_t
         WHERE date_trunc('day', ts) >= $1::timestamptz - interval '2 days' GROUP BY 1 ORDER BY 1`,
        [instant],
      );
      const view = await client.query("SELECT to_char(day AT TIME ZONE 'UTC', 'MM-DD') AS d, count, sum FROM daily ORDER BY day");
      expect(view.rows).toEqual(oracle.rows);
    }
    expect(await days()).toEqual([]);
  });

  it('changes the TTL with pipelinedb.set_ttl, and the background reaper applies it', async () => {
    now = new Date('2026-11-30T12:00:00Z');
    await client.query("INSERT INTO orders VALUES ('2026-11-30 01:00+00', 1), ('2026-11-20 01:00+00', 2)");
    expect(await days()).toEqual(['11-20', '11-30']);
    await client.query("SELECT pipelinedb.set_ttl('daily', '5 days', 'day')");
    const deadline = Date.now() + 10_000;
    while ((await days()).length > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await days()).toEqual(['11-30']);
  });

  it('takes ALTER VIEW … SET (ttl, ttl_column) like set_ttl', async () => {
    await client.query("ALTER VIEW daily SET (ttl = '1 day', ttl_column = 'day')");
    now = new Date('2026-12-10T12:00:00Z');
    await client.query("INSERT INTO orders VALUES ('2026-12-10 01:00+00', 1), ('2026-12-08 01:00+00', 2)");
    // With a one-day TTL at 12-10 12:00, the 11-30 and 12-08 groups have expired.
    expect((await client.query("SELECT pipelinedb.ttl_expire('daily') AS n")).rows).toEqual([{ n: 2 }]);
    expect(await days()).toEqual(['12-10']);
  });

  it('sends expired groups down the output stream with new = NULL', async () => {
    await client.query('CREATE VIEW expirations AS SELECT count(*) FILTER (WHERE new IS NULL) AS expired, count(*) FILTER (WHERE old IS NULL) AS appeared FROM output_of(\'daily\')');
    now = new Date('2026-12-20T12:00:00Z');
    await client.query("INSERT INTO orders VALUES ('2026-12-20 01:00+00', 1), ('2026-12-19 13:00+00', 2)");
    expect((await client.query('SELECT expired::int, appeared::int FROM expirations')).rows).toEqual([{ expired: 0, appeared: 2 }]);
    // One day later (TTL 1 day): 12-20, 12-19 and the earlier 12-10 group have all expired.
    now = new Date('2026-12-21T06:00:00Z');
    await client.query("SELECT pipelinedb.ttl_expire('daily')");
    expect((await client.query('SELECT expired::int, appeared::int FROM expirations')).rows).toEqual([{ expired: 3, appeared: 2 }]);
  });

  it('refuses a TTL on a column that is not a grouping timestamp', async () => {
    await expect(client.query("CREATE VIEW bad WITH (ttl = '1 day', ttl_column = 'count') AS SELECT count(*) FROM orders")).rejects.toMatchObject({ code: '22023' });
    await expect(client.query("CREATE VIEW bad WITH (ttl = '1 day') AS SELECT count(*) FROM orders")).rejects.toMatchObject({ code: '22023' });
  });
});
