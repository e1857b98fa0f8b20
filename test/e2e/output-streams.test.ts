import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { copyInto, type TextRow } from '../support/rows.ts';
import { startSluice, tempDataDir, type RunningSluice } from '../support/sluice.ts';

/**
 * Output streams: output_of('v') carries each change of v as (old, new) —
 * old NULL when a group first appears — and views over it chain to any depth.
 */
describe('output streams', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await client.query('CREATE STREAM clicks (url text, ms int)');
    await client.query('CREATE TABLE clicks_t (batch int, url text, ms int)');
    await client.query('CREATE VIEW per_url AS SELECT url, count(*), sum(ms) FROM clicks GROUP BY url');
    await client.query('CREATE VIEW changes AS SELECT (new).url, count(*) AS updates, count(*) FILTER (WHERE old IS NULL) AS inserts FROM output_of(\'per_url\') GROUP BY (new).url');
    await client.query('CREATE VIEW best AS SELECT (new).url AS url, max((new).sum) AS best FROM output_of(\'per_url\') WHERE (new).count >= 2 GROUP BY 1');
    await client.query('CREATE VIEW best_changes AS SELECT count(*) AS n, count(*) FILTER (WHERE old IS NULL) AS firsts FROM output_of(\'best\')');
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('emits old and new for every change, and a three-level chain equals the same SQL over all rows', async () => {
    const batches = [
      [['a', 5], ['b', 1]],
      [['a', 7], ['c', 2], ['c', 3]],
      [['b', 4], ['a', 1]],
      [['d', 9]],
    ];
    for (const [i, rows] of batches.entries()) {
      const values = rows.map(([u, ms]) => `('${u}', ${ms})`).join(', ');
      await client.query(`INSERT INTO clicks VALUES ${values}`);
      await client.query(`INSERT INTO clicks_t SELECT ${i}, * FROM (VALUES ${values}) AS v`);
    }
    // Each INSERT statement changes each of its groups once.
    const changes = await client.query('SELECT url, updates::int, inserts::int FROM changes ORDER BY url');
    const expected = await client.query('SELECT url, count(DISTINCT batch)::int AS updates, 1 AS inserts FROM clicks_t GROUP BY url ORDER BY url');
    expect(changes.rows).toEqual(expected.rows);
    // Level 2: the best sum seen once a group had two rows = its sum now (sums only grow here).
    const best = await client.query('SELECT url, best FROM best ORDER BY url');
    const bestExpected = await client.query('SELECT url, sum(ms) AS best FROM clicks_t GROUP BY url HAVING count(*) >= 2 ORDER BY url');
    expect(best.rows).toEqual(bestExpected.rows);
    // Level 3: how often level 2 changed, and how many of its groups appeared.
    const third = await client.query('SELECT n::int, firsts::int FROM best_changes');
    expect(third.rows).toEqual([{ n: 4, firsts: 3 }]);
  });

  it('rolls a per-minute view up per hour by combine((delta).col), equal to PostgreSQL grouping the rows by hour, across a restart', async () => {
    const dataDir = tempDataDir();
    let server = await startSluice({ dataDir });
    let c = await server.client();
    await c.query('CREATE STREAM readings (sensor int, ts timestamptz, v numeric, f float8, ok bool)');
    await c.query('CREATE TABLE readings_t (sensor int, ts timestamptz, v numeric, f float8, ok bool)');
    await c.query(`CREATE VIEW per_minute AS SELECT sensor, minute(ts) AS m, count(*) AS n, sum(v) AS total, avg(v) AS mean, min(f) AS low, max(f) AS high,
      stddev(f) AS spread, bool_and(ok) AS all_ok FROM readings GROUP BY sensor, m`);
    const rollup = `SELECT (delta).sensor, hour((delta).m) AS h, combine((delta).n) AS n, combine((delta).total) AS total, combine((delta).mean) AS mean,
      combine((delta).low) AS low, combine((delta).high) AS high, combine((delta).spread) AS spread, combine((delta).all_ok) AS all_ok FROM output_of('per_minute') GROUP BY (delta).sensor, h`;
    await c.query(`CREATE VIEW per_hour AS ${rollup}`);
    await c.query("CREATE VIEW everything AS SELECT combine((delta).n) AS n, combine((delta).mean) AS mean FROM output_of('per_minute')");
    // Rollups chain: per day from per hour.
    await c.query("CREATE VIEW per_day AS SELECT (delta).sensor, date_trunc('day', (delta).h) AS d, combine((delta).mean) AS mean, combine((delta).spread) AS spread FROM output_of('per_hour') GROUP BY (delta).sensor, d");
    await expect(c.query("CREATE VIEW wrong AS SELECT combine((new).n) FROM output_of('per_minute')")).rejects.toMatchObject({ code: '0A000' });
    await expect(c.query("CREATE VIEW wrong AS SELECT combine((delta).sensor) FROM output_of('per_minute')")).rejects.toMatchObject({ code: '42703' });
    const r = rng(17);
    const batch = (n: number): TextRow[] =>
      Array.from({ length: n }, () => [
        String(Math.floor(r() * 20)),
        new Date(Date.UTC(2026, 11, 6, Math.floor(r() * 5), Math.floor(r() * 60), Math.floor(r() * 60))).toISOString(),
        r() < 0.05 ? null : (r() * 1000).toFixed(2),
        r() < 0.05 ? null : String(r() * 100 - 50),
        r() < 0.05 ? null : String(r() < 0.9),
      ]);
    const send = async (rows: TextRow[]) => {
      await copyInto(c, 'readings', 'sensor, ts, v, f, ok', rows);
      await copyInto(c, 'readings_t', 'sensor, ts, v, f, ok', rows);
    };
    // COPY folds in the engine; a small INSERT … SELECT is evaluated by the store: both carry deltas.
    await send(batch(20_000));
    await c.query("INSERT INTO readings SELECT 3, '2026-12-06 01:30+00', 1.5, 2.5, false FROM generate_series(1, 3)");
    await c.query("INSERT INTO readings_t SELECT 3, '2026-12-06 01:30+00', 1.5, 2.5, false FROM generate_series(1, 3)");
    await server.stop();
    server = await startSluice({ dataDir });
    c = await server.client();
    await send(batch(5_000));
    const exact = `SELECT sensor, date_trunc('hour', ts) AS h, count(*) AS n, sum(v) AS total, avg(v) AS mean, min(f) AS low, max(f) AS high,
      stddev(f) AS spread, bool_and(ok) AS all_ok FROM readings_t GROUP BY 1, 2 ORDER BY 1, 2`;
    const view = (await c.query('SELECT * FROM per_hour ORDER BY 1, 2')).rows;
    const expected = (await c.query(exact)).rows;
    expect(view.length).toBe(100);
    // float8 sums of the same values added in another order may differ in the last bits.
    const rounded = (rows: Record<string, unknown>[]) => rows.map((row) => ({ ...row, spread: row.spread === null ? null : Number(row.spread).toPrecision(10) }));
    expect(rounded(view)).toEqual(rounded(expected));
    expect((await c.query('SELECT n::int, mean FROM everything')).rows).toEqual((await c.query('SELECT count(*)::int AS n, avg(v) AS mean FROM readings_t')).rows);
    const days = (await c.query('SELECT sensor, mean, spread FROM per_day ORDER BY sensor')).rows;
    const exactDays = (await c.query("SELECT sensor, avg(v) AS mean, stddev(f) AS spread FROM readings_t GROUP BY sensor, date_trunc('day', ts) ORDER BY sensor")).rows;
    expect(rounded(days)).toEqual(rounded(exactDays));
    // combine() when reading the rollup goes through the same states.
    expect((await c.query('SELECT combine(mean) AS mean FROM per_hour WHERE sensor = 3')).rows).toEqual(
      (await c.query('SELECT avg(v) AS mean FROM readings_t WHERE sensor = 3')).rows,
    );
    await server.stop({ removeData: true });
  });

  it('keeps every selected row in a view without aggregates (a log of spikes from an output stream)', async () => {
    await client.query('CREATE STREAM hits (url text)');
    await client.query("CREATE VIEW last_5m AS SELECT url, count(*) FROM hits WHERE arrival_timestamp > clock_timestamp() - interval '5 minutes' GROUP BY url");
    await client.query("CREATE VIEW spikes AS SELECT (new).url, (new).count FROM output_of('last_5m') WHERE (new).count > 2");
    await client.query("CREATE VIEW raw_hits AS SELECT url, upper(url) AS loud FROM hits WHERE url <> '/skip'");
    await client.query("INSERT INTO hits VALUES ('/a'), ('/a'), ('/a'), ('/b'), ('/skip')");
    await client.query("INSERT INTO hits VALUES ('/a'), ('/b')");
    expect((await client.query('SELECT url, count::int FROM spikes ORDER BY count')).rows).toEqual([
      { url: '/a', count: 3 },
      { url: '/a', count: 4 },
    ]);
    expect((await client.query('SELECT url, loud FROM raw_hits ORDER BY url')).rows).toEqual([
      { url: '/a', loud: '/A' }, { url: '/a', loud: '/A' }, { url: '/a', loud: '/A' }, { url: '/a', loud: '/A' },
      { url: '/b', loud: '/B' }, { url: '/b', loud: '/B' },
    ]);
  });

  it('refuses to drop a view that other views read, unless CASCADE', async () => {
    await expect(client.query('DROP VIEW per_url')).rejects.toMatchObject({ code: '2BP01', detail: expect.stringContaining('view changes depends on view per_url') });
    await client.query('DROP VIEW per_url CASCADE');
    const left = await client.query("SELECT name FROM pipelinedb.get_views() ORDER BY name");
    expect(left.rows).toEqual([{ name: 'last_5m' }, { name: 'raw_hits' }, { name: 'spikes' }]);
    const relations = await client.query("SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'per_url%' OR relname LIKE 'best%' OR relname LIKE 'changes%'");
    expect(relations.rows).toEqual([{ n: 0 }]);
  });
});
