import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { startSluice, tempDataDir } from '../support/sluice.ts';

/**
 * PipelineDB's sketch rewrites in continuous views: count(DISTINCT) as a
 * HyperLogLog and percentile_cont as a t-digest, merged batch after batch
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
