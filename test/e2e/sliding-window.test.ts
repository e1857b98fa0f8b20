import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * Sliding windows, both PipelineDB spellings. Rows are aggregated into
 * buckets of step = window × step_factor / 100 (date_bin from 2000-01-01);
 * reading the view merges the buckets that still overlap the window, so the
 * view ages as time passes with no new rows. Rows carry their own times here
 * (minutes to hours in the past) instead of the test sleeping.
 */
describe('sliding windows', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await client.query('CREATE STREAM orders (user_id int, amount numeric, ts timestamptz)');
    await client.query('CREATE TABLE orders_t (user_id int, amount numeric, ts timestamptz)');
    await client.query(`CREATE VIEW per_user WITH (sw = '1 hour', sw_column = 'ts') AS
      SELECT user_id, count(*), sum(amount), avg(amount), max(amount), var_samp(amount) AS var FROM orders GROUP BY user_id`);
    await client.query('CREATE STREAM clicks (user_id int, amount numeric)');
    await client.query(`CREATE VIEW recent AS SELECT count(*), sum(amount) FROM clicks
      WHERE arrival_timestamp > clock_timestamp() - interval '10 minutes' AND amount > 0`);
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('equals a batch query over the buckets still inside the window', async () => {
    const r = rng(11);
    for (let batch = 0; batch < 4; batch++) {
      const rows = Array.from({ length: 200 }, () => `(${Math.floor(r() * 8)}, ${(r() * 100).toFixed(2)}, now() - interval '${Math.floor(r() * 150)} minutes ${Math.floor(r() * 60)} seconds')`);
      await client.query(`INSERT INTO orders_t VALUES ${rows.join(', ')}`);
    }
    // The stream gets exactly the oracle's rows (with their computed times).
    const all = (await client.query("SELECT user_id, amount::text, ts::text FROM orders_t")).rows;
    await client.query(`INSERT INTO orders (user_id, amount, ts) VALUES ${all.map((o) => `(${o.user_id}, ${o.amount}, '${o.ts}')`).join(', ')}`);
    const oracle = await client.query(`SELECT user_id, count(*), sum(amount), avg(amount), max(amount), var_samp(amount) AS var FROM orders_t
      WHERE date_bin('3 minutes', ts, timestamptz '2000-01-01 00:00:00+00') + interval '3 minutes' > clock_timestamp() - interval '1 hour'
      GROUP BY user_id ORDER BY user_id`);
    const view = await client.query('SELECT * FROM per_user ORDER BY user_id');
    expect(view.rows).toEqual(oracle.rows);
    // Rows of the last hour are all in; rows older than 1 h 3 min are all out.
    const bounds = await client.query(`SELECT
      (SELECT count(*) FROM orders_t WHERE ts > now() - interval '1 hour')::int AS inside,
      (SELECT count(*) FROM orders_t WHERE ts > now() - interval '63 minutes')::int AS at_most`);
    const counted = Number((await client.query('SELECT sum(count) AS n FROM per_user')).rows[0].n);
    expect(counted).toBeGreaterThanOrEqual(bounds.rows[0].inside);
    expect(counted).toBeLessThanOrEqual(bounds.rows[0].at_most);
  });

  it('merges sketches across the window when read: count(DISTINCT), hll_agg, topk_agg, dist_agg, percentile_cont, bucket_agg (PipelineDB\'s unique users of the last hour)', async () => {
    await client.query('CREATE STREAM visits (user_id int, page text, ms float8, ts timestamptz)');
    await client.query('CREATE TABLE visits_t (user_id int, page text, ms float8, ts timestamptz)');
    await client.query(`CREATE VIEW visitors WITH (sw = '1 hour', sw_column = 'ts') AS
      SELECT page, count(DISTINCT user_id) AS users, hll_agg(user_id) AS hll, topk_agg(user_id, 3) AS top, dist_agg(ms) AS dist,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median, bucket_agg(user_id, (user_id % 4)::int2) AS b
      FROM visits GROUP BY page`);
    const r = rng(5);
    // Users 1, 2 and 3 are the heavy hitters (a clear top 3), the others visit a few times.
    const user = () => (r() < 0.3 ? 1 + Math.floor(r() * r() * 3) : 10 + Math.floor(r() * 300) * (r() < 0.3 ? 1 : 7));
    const rows = Array.from({ length: 3000 }, () => `(${user()}, 'p${Math.floor(r() * 2)}', ${Math.floor(r() * 1000)}, now() - interval '${Math.floor(r() * 7200)} seconds')`);
    await client.query(`INSERT INTO visits_t VALUES ${rows.join(', ')}`);
    const all = (await client.query('SELECT user_id, page, ms, ts::text FROM visits_t')).rows;
    for (let i = 0; i < all.length; i += 500) {
      await client.query(`INSERT INTO visits (user_id, page, ms, ts) VALUES ${all.slice(i, i + 500).map((v) => `(${v.user_id}, '${v.page}', ${v.ms}, '${v.ts}')`).join(', ')}`);
    }
    const inWindow = `date_bin('3 minutes', ts, timestamptz '2000-01-01 00:00:00+00') + interval '3 minutes' > clock_timestamp() - interval '1 hour'`;
    const exact = await client.query(`SELECT page, count(DISTINCT user_id)::int AS users, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median,
        (SELECT array_agg(user_id ORDER BY n DESC, user_id::text) FROM (SELECT user_id, count(*) AS n FROM visits_t w WHERE w.page = v.page AND ${inWindow} GROUP BY user_id ORDER BY n DESC, user_id::text LIMIT 3) AS t) AS top,
        (SELECT array_agg(c ORDER BY b) FROM (SELECT user_id % 4 AS b, count(DISTINCT user_id)::int AS c FROM visits_t w WHERE w.page = v.page AND ${inWindow} GROUP BY 1) AS t) AS buckets
      FROM visits_t v WHERE ${inWindow} GROUP BY page ORDER BY page`);
    const view = await client.query(`SELECT page, users::int, hll_cardinality(hll)::int AS hll_users, topk_values(top)::int[] AS top, dist_quantile(dist, 0.5) AS dq, median,
        bucket_cardinalities(b) AS buckets FROM visitors ORDER BY page`);
    expect(view.rows.map((v) => v.page)).toEqual(exact.rows.map((e) => e.page));
    for (const [i, e] of exact.rows.entries()) {
      const v = view.rows[i];
      // A few hundred distinct values: HyperLogLog is exact there; top-k and buckets are exact below their capacity.
      expect(v.users).toBe(e.users);
      expect(v.hll_users).toBe(e.users);
      expect(v.top).toEqual(e.top);
      expect(v.buckets).toEqual(e.buckets);
      expect(Math.abs(v.median - e.median)).toBeLessThan(20);
      expect(Math.abs(v.dq - e.median)).toBeLessThan(20);
    }
  });

  it('ages at several instants of a pinned clock (SET sluice.now), equal to the batch oracle at each', async () => {
    for (const ago of ['0 minutes', '20 minutes', '45 minutes', '90 minutes']) {
      const instant = (await client.query(`SELECT (now() + interval '${ago}')::text AS t`)).rows[0].t as string;
      await client.query(`SET sluice.now = '${instant}'`);
      const oracle = await client.query(
        `SELECT user_id, count(*), sum(amount) FROM orders_t
         WHERE date_bin('3 minutes', ts, timestamptz '2000-01-01 00:00:00+00') + interval '3 minutes' > $1::timestamptz - interval '1 hour'
         GROUP BY user_id ORDER BY user_id`,
        [instant],
      );
      expect((await client.query('SELECT user_id, count, sum FROM per_user ORDER BY user_id')).rows).toEqual(oracle.rows);
    }
    await client.query('RESET sluice.now');
  });

  it('groups by event time with date_trunc, date_round and minute() (tumbling and hopping buckets)', async () => {
    await client.query('CREATE STREAM ticks (ts timestamptz, v int)');
    await client.query('CREATE TABLE ticks_t (ts timestamptz, v int)');
    await client.query("CREATE VIEW per_5m AS SELECT date_round(ts, '5 minutes') AS bucket, count(*), sum(v) FROM ticks GROUP BY bucket");
    await client.query('CREATE VIEW per_min AS SELECT minute(ts) AS m, count(*) FROM ticks GROUP BY m');
    await client.query("CREATE VIEW per_hour AS SELECT date_trunc('hour', ts) AS h, max(v) FROM ticks GROUP BY h");
    const rows = "('2026-11-21 10:03:59+00', 1), ('2026-11-21 10:04:00+00', 2), ('2026-11-21 10:05:00+00', 3), (NULL, 4), ('2999-01-01 00:00:00+00', 5)";
    await client.query(`INSERT INTO ticks VALUES ${rows}`);
    await client.query(`INSERT INTO ticks_t VALUES ${rows}`);
    const same = async (view: string, oracle: string) => expect((await client.query(`SELECT * FROM ${view} ORDER BY 1`)).rows).toEqual((await client.query(`${oracle} ORDER BY 1`)).rows);
    await same('per_5m', "SELECT date_bin('5 minutes', ts, timestamptz '2000-01-01') AS bucket, count(*), sum(v) FROM ticks_t GROUP BY 1");
    await same('per_min', "SELECT date_trunc('minute', ts) AS m, count(*) FROM ticks_t GROUP BY 1");
    await same('per_hour', "SELECT date_trunc('hour', ts) AS h, max(v) FROM ticks_t GROUP BY 1");
  });

  it('reads the _mrel buckets, and the reaper removes the ones that left the window', async () => {
    // The _mrel shows the step buckets (the background reaper may already have dropped the oldest).
    const buckets = await client.query('SELECT count(DISTINCT arrival_timestamp)::int AS n FROM per_user_mrel');
    expect(buckets.rows[0].n).toBeGreaterThan(10);
    // combine() over the buckets of the _mrel merges their states, as in PipelineDB.
    const combined = await client.query('SELECT user_id, combine(count) AS n, combine(avg) AS mean FROM per_user_mrel GROUP BY user_id ORDER BY user_id');
    const direct = await client.query(`SELECT user_id, sum(count) AS n, round(sum(("avg")[2]) / sum(("avg")[1]), 16) AS mean FROM per_user_mrel GROUP BY user_id ORDER BY user_id`);
    expect(combined.rows).toEqual(direct.rows);
    await client.query("SELECT pipelinedb.ttl_expire('per_user')");
    const after = await client.query("SELECT min(arrival_timestamp) >= now() - interval '64 minutes' AS all_recent, min(arrival_timestamp)::text AS oldest, now()::text AS now FROM per_user_mrel");
    expect(after.rows[0]).toMatchObject({ all_recent: true });
  });

  it('takes arrival_timestamp > clock_timestamp() - interval as a window, keeping the rest of WHERE', async () => {
    await client.query(`INSERT INTO clicks (user_id, amount, arrival_timestamp) VALUES
      (1, 5, now()), (1, 7, now() - interval '2 minutes'), (1, -3, now()),
      (2, 11, now() - interval '30 minutes'), (2, 13, now() - interval '3 hours')`);
    expect((await client.query('SELECT count::int, sum FROM recent')).rows).toEqual([{ count: 2, sum: '12' }]);
  });

  it('emits window changes on its output stream: old and new as rows arrive, new = NULL as groups leave', async () => {
    await client.query('CREATE STREAM pings (host text, ts timestamptz)');
    await client.query("CREATE VIEW alive WITH (sw = '10 seconds', sw_column = 'ts', step_factor = 10) AS SELECT host, count(*) FROM pings GROUP BY host");
    await client.query("CREATE VIEW transitions AS SELECT (coalesce(new, old)).host AS host, count(*) FILTER (WHERE old IS NULL) AS ups, count(*) FILTER (WHERE new IS NULL) AS downs, count(*) FILTER (WHERE old IS NOT NULL AND new IS NOT NULL) AS updates FROM output_of('alive') GROUP BY 1");
    await client.query("INSERT INTO pings VALUES ('a', now()), ('b', now() - interval '8 seconds')");
    await client.query("INSERT INTO pings VALUES ('a', now())");
    const rows = async () => (await client.query('SELECT host, ups::int, downs::int, updates::int FROM transitions ORDER BY host')).rows;
    expect(await rows()).toEqual([
      { host: 'a', ups: 1, downs: 0, updates: 1 },
      { host: 'b', ups: 1, downs: 0, updates: 0 },
    ]);
    // The real-time part: b's only ping leaves the 10 s window within a few seconds; the reaper notices.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (await rows()).find((r) => r.host === 'b')?.downs !== 1) await new Promise((r) => setTimeout(r, 250));
    expect((await rows()).find((r) => r.host === 'b')).toEqual({ host: 'b', ups: 1, downs: 1, updates: 0 });
  }, 30_000);

  it('refuses what a window cannot merge', async () => {
    await expect(client.query("CREATE VIEW bad WITH (sw = '1 hour') AS SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY amount) FROM orders")).rejects.toMatchObject({ code: '0A000' });
    await expect(client.query("CREATE VIEW bad WITH (sw = '1 hour', sw_column = 'amount') AS SELECT count(*) FROM orders")).rejects.toMatchObject({ code: '22023' });
  });
});
