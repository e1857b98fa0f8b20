import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { startSluice, tempDataDir } from '../support/sluice.ts';

/**
 * PipelineDB's sketch rewrites in continuous views: count(DISTINCT) as a
 * HyperLogLog and percentile_cont (and percentile_disc) as a t-digest, merged batch after batch
 * and across a restart, checked against PostgreSQL's exact answers over the
 * same rows within the documented error.
 */
async function copyRows(client: pg.Client, relation: string, rows: string[]): Promise<void> {
  await pipeline(Readable.from([rows.join('\n') + '\n']), client.query(copyFrom(`COPY ${relation} (k, u, x) FROM STDIN`)));
}

function makeRows(seed: number, count: number): string[] {
  const r = rng(seed);
  return Array.from({ length: count }, () => `k${Math.floor(r() * 3)}\t${Math.floor(r() * 20000)}\t${(r() * 1000).toFixed(3)}`);
}

describe('sketch aggregates', () => {
  it('count(DISTINCT) within 2% and percentile_cont within 1% rank error, batch after batch and across a restart', async () => {
    const dataDir = tempDataDir();
    let sluice = await startSluice({ dataDir });
    let client = await sluice.client();
    await client.query('CREATE STREAM s (k text, u int, x float8)');
    await client.query('CREATE TABLE t (k text, u int, x float8)');
    await client.query(`CREATE VIEW v AS SELECT k, count(*), count(DISTINCT u) AS users,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50,
      percentile_cont(ARRAY[0.1, 0.99]) WITHIN GROUP (ORDER BY x) AS ps FROM s GROUP BY k`);
    await client.query('CREATE VIEW big AS SELECT count(DISTINCT u) AS users FROM s WHERE x > 500');
    for (let batch = 0; batch < 6; batch++) {
      const rows = makeRows(batch + 1, 15_000);
      await copyRows(client, 's', rows);
      await copyRows(client, 't', rows);
      if (batch === 2) {
        await sluice.stop();
        sluice = await startSluice({ dataDir });
        client = await sluice.client();
      }
    }
    const view = (await client.query('SELECT k, count::int, users::int, p50, ps FROM v ORDER BY k')).rows;
    const exact = (await client.query('SELECT k, count(*)::int, count(DISTINCT u)::int AS users FROM t GROUP BY k ORDER BY k')).rows;
    expect(view.map((r) => [r.k, r.count])).toEqual(exact.map((r) => [r.k, r.count]));
    for (let i = 0; i < exact.length; i++) {
      expect(Math.abs(view[i].users - exact[i].users) / exact[i].users).toBeLessThan(0.02);
      for (const [q, estimate] of [[0.5, view[i].p50], [0.1, view[i].ps[0]], [0.99, view[i].ps[1]]] as [number, number][]) {
        const rank = await client.query('SELECT (count(*) FILTER (WHERE x <= $2))::float8 / count(*) AS r FROM t WHERE k = $1', [view[i].k, estimate]);
        expect(Math.abs(rank.rows[0].r - q)).toBeLessThan(0.01);
      }
    }
    const big = (await client.query('SELECT users::int FROM big')).rows[0].users;
    const bigExact = (await client.query('SELECT count(DISTINCT u)::int AS n FROM t WHERE x > 500')).rows[0].n;
    expect(Math.abs(big - bigExact) / bigExact).toBeLessThan(0.02);
    const types = (await client.query('SELECT users, p50, ps FROM v LIMIT 0')).fields.map((f) => f.dataTypeID);
    expect(types).toEqual([20, 701, 1022]);
    await sluice.stop({ removeData: true });
  });

  it('percentile_disc within 1% rank error over 100k values, of the ORDER BY type, merged batch after batch', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (k text, u int, x float8)');
    await client.query('CREATE TABLE t (k text, u int, x float8)');
    await client.query(`CREATE VIEW v AS SELECT k, count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY u) AS p50,
      percentile_disc(ARRAY[0, 0.01, 0.25, 0.9, 0.999, 1]) WITHIN GROUP (ORDER BY x) AS ps,
      percentile_disc(0.95) WITHIN GROUP (ORDER BY x DESC) AS p95desc, percentile_disc(0.3) WITHIN GROUP (ORDER BY u::int8) AS p30 FROM s GROUP BY k`);
    // 100k skewed values in ~70 batches of random sizes; a small group gets one row per batch.
    const r = rng(4242);
    let big = 0;
    let small = 0;
    while (big < 100_000) {
      const size = Math.min(100_000 - big, 1 + Math.floor(r() * 3000));
      const rows = Array.from({ length: size }, () => `big\t${Math.floor(r() ** 3 * 50_000)}\t${Math.exp(r() * 12).toFixed(4)}`);
      if (small++ < 60) rows.push(`small\t${Math.floor(r() * 100)}\t${(r() * 100).toFixed(2)}`);
      big += size;
      await copyRows(client, 's', rows);
      await copyRows(client, 't', rows);
    }
    const types = (await client.query('SELECT p50, ps, p95desc, p30 FROM v LIMIT 0')).fields.map((f) => f.dataTypeID);
    expect(types).toEqual([23, 1022, 701, 20]);
    const text = { getTypeParser: () => (v: string) => v };
    const view = (await client.query({ text: 'SELECT k, count, p50, ps, p95desc, p30 FROM v ORDER BY k', types: text })).rows;
    expect(view.map((row) => [row.k, row.count])).toEqual([['big', '100000'], ['small', '60']]);

    // In a small group every value is still its own centroid: the answer is PostgreSQL's own.
    const exact = await client.query({
      text: `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY u) AS p50, percentile_disc(ARRAY[0, 0.01, 0.25, 0.9, 0.999, 1]) WITHIN GROUP (ORDER BY x) AS ps,
        percentile_disc(0.95) WITHIN GROUP (ORDER BY x DESC) AS p95desc, percentile_disc(0.3) WITHIN GROUP (ORDER BY u::int8) AS p30 FROM t WHERE k = 'small'`,
      types: text,
    });
    expect(view[1]).toEqual({ k: 'small', count: '60', ...exact.rows[0] });

    // In the big one, each answer is a value of x's type whose rank is within 1% of the fraction.
    const bigRow = view[0];
    expect(bigRow.p50).toMatch(/^\d+$/);
    expect(bigRow.p30).toMatch(/^\d+$/);
    const ps = (bigRow.ps as string).slice(1, -1).split(',').map(Number);
    const checks: [string, number, number][] = [
      ['u', 0.5, Number(bigRow.p50)],
      ['u', 0.3, Number(bigRow.p30)],
      ...[0, 0.01, 0.25, 0.9, 0.999, 1].map((q, i): [string, number, number] => ['x', q, ps[i]]),
      // The 95th percentile in descending order is the 5th in ascending order.
      ['x', 0.05, Number(bigRow.p95desc)],
    ];
    for (const [column, q, estimate] of checks) {
      const rank = await client.query(
        `SELECT count(*) FILTER (WHERE ${column} < $1)::float8 / count(*) AS below, count(*) FILTER (WHERE ${column} <= $1)::float8 / count(*) AS upto FROM t WHERE k = 'big'`,
        [estimate],
      );
      const { below, upto } = rank.rows[0];
      // The distance from q to the estimate's rank range (ties give a range).
      const error = q < below ? below - q : q > upto ? q - upto : 0;
      expect({ column, q, estimate, error: error < 0.01 }).toEqual({ column, q, estimate, error: true });
    }
    // The extremes are exact: the digest keeps the minimum and maximum.
    const extremes = (await client.query({ text: "SELECT min(x)::text AS lo, max(x)::text AS hi FROM t WHERE k = 'big'", types: text })).rows[0];
    expect([ps[0], ps[5]]).toEqual([Number(extremes.lo), Number(extremes.hi)]);
    await sluice.stop({ removeData: true });
  });

  it('counts small distinct sets exactly and ignores NULLs, as count(DISTINCT) does', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (k text, u int, x float8)');
    await client.query('CREATE VIEW v AS SELECT k, count(DISTINCT u) AS users, count(DISTINCT x::numeric) AS xs FROM s GROUP BY k');
    await client.query("INSERT INTO s VALUES ('a', 1, 1.0), ('a', 1, 1.00), ('a', 2, NULL), ('a', NULL, 2), ('b', NULL, NULL)");
    await client.query("INSERT INTO s VALUES ('a', 3, 1), ('a', 2, 3)");
    expect((await client.query('SELECT k, users::int, xs::int FROM v ORDER BY k')).rows).toEqual([
      { k: 'a', users: 3, xs: 3 },
      { k: 'b', users: 0, xs: 0 },
    ]);
    await sluice.stop({ removeData: true });
  });
});
