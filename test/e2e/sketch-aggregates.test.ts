import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TDigest } from '../../engine/sketches/index.ts';
import { rng, zipf } from '../support/random.ts';
import { startSluice, tempDataDir, type RunningSluice } from '../support/sluice.ts';

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

/**
 * PipelineDB's sketch aggregates and keyed_max/keyed_min as ordinary
 * aggregates, over whatever rows the serving store aggregates (tables,
 * generate_series, sub-selects, UNION ALL), queried over the wire: their
 * states are the ones a continuous view over the same rows keeps, and the
 * sketch functions read them.
 */
async function copyColumns(client: pg.Client, relation: string, columns: string, rows: string[]): Promise<void> {
  await pipeline(Readable.from([rows.join('\n') + '\n']), client.query(copyFrom(`COPY ${relation} (${columns}) FROM STDIN`)));
}

const hex = (b: Buffer | null) => (b === null ? null : b.toString('hex'));

describe('sketch aggregates over tables and queries', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    const columns = 'g int, x int, w int, id int, ts timestamptz, k int, val text';
    await client.query(`CREATE STREAM s (${columns})`);
    // n numbers the table's rows in arrival order, as the stream's rows arrive.
    await client.query(`CREATE TABLE t (n bigserial, ${columns})`);
    await client.query(`CREATE VIEW v AS SELECT g, hll_agg(x) AS h, hll_agg(x, 10) AS h10, freq_agg(x) AS f, freq_agg(x, 0.01, 0.9) AS f2,
      bloom_agg(x) AS b, bloom_agg(x, 0.1, 2000) AS b2, topk_agg(x % 60, 5) AS tk, topk_agg(x % 60, 5, w) AS tkw, dist_agg(x) AS d,
      bucket_agg(x, id::int2) AS bu, bucket_agg(x, id::int2, ts) AS bt, keyed_max(k, val) AS kmax, keyed_min(k, val) AS kmin FROM s GROUP BY g`);
    const next = zipf(rng(41), 3000, 1.1);
    const r = rng(42);
    const base = Date.parse('2024-05-01T00:00:00Z');
    for (let batch = 0; batch < 5; batch++) {
      const rows = Array.from({ length: 6000 }, () => {
        const x = r() < 0.02 ? '\\N' : String(next());
        const k = r() < 0.05 ? '\\N' : String(Math.floor(r() * 500));
        const val = r() < 0.1 ? '\\N' : `w${Math.floor(r() * 40)}`;
        const ts = new Date(base + Math.floor(r() * 900) * 1000).toISOString();
        return `${1 + Math.floor(r() * 2)}\t${x}\t${1 + Math.floor(r() * 4)}\t${Math.floor(r() * 7) - 3}\t${ts}\t${k}\t${val}`;
      });
      await copyColumns(client, 's', 'g, x, w, id, ts, k, val', rows);
      await copyColumns(client, 't', 'g, x, w, id, ts, k, val', rows);
    }
  });

  afterAll(async () => {
    await sluice.stop({ removeData: true });
  });

  it('over a table, each aggregate gives the state the continuous view over the same rows keeps', async () => {
    const view = (await client.query('SELECT * FROM v ORDER BY g')).rows;
    const table = (await client.query(`SELECT g, hll_agg(x) AS h, hll_agg(x, 10) AS h10, freq_agg(x) AS f, freq_agg(x, 0.01, 0.9) AS f2,
      bloom_agg(x) AS b, bloom_agg(x, 0.1, 2000) AS b2, topk_agg(x % 60, 5) AS tk, topk_agg(x % 60, 5, w) AS tkw, dist_agg(x) AS d,
      bucket_agg(x, id::int2 ORDER BY n) AS bu, bucket_agg(x, id::int2, ts ORDER BY n) AS bt, keyed_max(k, val) AS kmax, keyed_min(k, val) AS kmin
      FROM t GROUP BY g ORDER BY g`)).rows;
    expect(table.map((row) => row.g)).toEqual([1, 2]);
    for (let i = 0; i < 2; i++) {
      // Sketches that depend only on the values, and top-k summaries that stayed exact (60 values, 100 counters): byte for byte.
      for (const column of ['h', 'h10', 'f', 'f2', 'b', 'b2', 'tk', 'tkw', 'bu', 'bt']) {
        expect([column, hex(table[i][column])]).toEqual([column, hex(view[i][column])]);
      }
      expect([table[i].kmax, table[i].kmin]).toEqual([view[i].kmax, view[i].kmin]);
    }
    // The digests' values are the same, their order and batches not: the same extremes, quantiles within 1% of rank (ties span a range of ranks).
    const digests = (await client.query(`WITH q AS MATERIALIZED (
        SELECT v.g, e.q, dist_quantile(v.d, e.q) AS view, dist_quantile(d.d, e.q) AS tbl
        FROM v JOIN (SELECT g, dist_agg(x) AS d FROM t GROUP BY g) AS d ON d.g = v.g, unnest(ARRAY[0, 0.1, 0.5, 0.9, 1]::float8[]) AS e(q))
      SELECT q.*, r.below, r.upto FROM q, LATERAL (SELECT avg((t.x < q.tbl)::int)::float8 AS below, avg((t.x <= q.tbl)::int)::float8 AS upto
        FROM t WHERE t.g = q.g AND t.x IS NOT NULL) AS r ORDER BY 1, 2`)).rows;
    expect(digests).toHaveLength(10);
    for (const row of digests) {
      if (row.q === 0 || row.q === 1) expect(row.tbl).toBe(row.view);
      expect(row.q).toBeGreaterThanOrEqual(row.below - 0.01);
      expect(row.q).toBeLessThanOrEqual(row.upto + 0.01);
    }
  });

  it('the sketch functions read them, over tables, generate_series, sub-selects and UNION ALL', async () => {
    const q = async (sql: string) => (await client.query(sql)).rows[0];
    expect(await q('SELECT bloom_contains((SELECT bloom_agg(g) FROM generate_series(1, 100) AS g), 50) AS yes')).toEqual({ yes: true });
    expect(await q('SELECT bloom_contains((SELECT bloom_agg(g) FROM generate_series(1, 100) AS g), 500) AS no')).toEqual({ no: false });
    const distinct = Number((await q('SELECT count(DISTINCT x) AS n FROM t')).n);
    const hll = Number((await q('SELECT hll_cardinality(hll_agg(x)) AS n FROM t')).n);
    expect(Math.abs(hll - distinct) / distinct).toBeLessThan(0.02);
    expect(Number((await q('SELECT hll_cardinality(hll_agg(g)) AS n FROM generate_series(1, 1000) AS g')).n)).toBe(1000);

    const top = (await client.query('SELECT x::text AS value, count(*)::int AS n FROM t WHERE g = 1 AND x IS NOT NULL GROUP BY x ORDER BY n DESC, x::text LIMIT 3')).rows;
    const fromSubselect = await q('SELECT topk_values(topk_agg(x, 3)) AS vs, topk_freqs(topk_agg(x, 3)) AS fs FROM (SELECT x FROM t WHERE g = 1) AS s');
    expect(fromSubselect.vs).toEqual(top.map((row) => row.value));
    // Over a table the counts are exact, not Space-Saving estimates.
    expect(fromSubselect.fs.map(Number)).toEqual(top.map((row) => row.n));
    expect((await q('SELECT topk(topk_agg(x, 1)) AS t FROM t WHERE g = 1')).t).toBe(`(${top[0].value},${top[0].n})`);

    expect(await q("SELECT freq(freq_agg(v), 'a') AS a, freq(freq_agg(v), 'c') AS c, freq_total(freq_agg(v)) AS total FROM (SELECT 'a' AS v UNION ALL SELECT 'a' UNION ALL SELECT 'b' UNION ALL SELECT NULL) AS u")).toEqual({
      a: '2',
      c: '0',
      total: '3',
    });
    const freq = await q('SELECT freq(freq_agg(x), 1) AS f, (SELECT count(*) FROM t WHERE x = 1) AS n FROM t');
    expect(Number(freq.f)).toBeGreaterThanOrEqual(Number(freq.n));

    const median = await q('SELECT dist_quantile(dist_agg(x), 0.5) AS d, percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p FROM t');
    expect(Math.abs(median.d - median.p)).toBeLessThanOrEqual(Math.max(1, median.p * 0.05));
    // The digest's own interpolation (TDigest.quantile), over the values of a UNION ALL.
    const digest = TDigest.create();
    for (let g = 1; g <= 100; g++) digest.add(g);
    expect(await q('SELECT dist_quantile(dist_agg(g), 0.5) AS m FROM (SELECT g FROM generate_series(1, 99) AS g UNION ALL SELECT 100) AS u')).toEqual({ m: digest.quantile(0.5) });

    // Each value in the bucket of its latest row (by arrival without timestamps), as PostgreSQL counts it.
    const buckets = (await client.query('SELECT b::int AS b, count(*)::int AS n FROM (SELECT DISTINCT ON (x) x, id AS b FROM t WHERE x IS NOT NULL ORDER BY x, n DESC) AS l GROUP BY b ORDER BY b')).rows;
    const sketch = await q('SELECT bucket_ids(bucket_agg(x, id::int2 ORDER BY n)) AS ids, bucket_cardinalities(bucket_agg(x, id::int2 ORDER BY n)) AS cards FROM t');
    expect(sketch.ids).toEqual(buckets.map((row) => row.b));
    expect(sketch.cards).toEqual(buckets.map((row) => row.n));
    expect(await q('SELECT bucket_cardinalities(bucket_agg(g % 10, (g % 3)::int2)) AS c FROM generate_series(1, 30) AS g')).toEqual({ c: [4, 3, 3] });

    // Over no rows, NULL, as PostgreSQL's aggregates are (and the functions of NULL are NULL).
    expect(await q('SELECT hll_agg(x) AS h, hll_cardinality(hll_agg(x)) AS n, topk_agg(x, 3) AS t FROM t WHERE false')).toEqual({ h: null, n: null, t: null });
    expect(await q('SELECT hll_cardinality(hll_agg(x)) AS n FROM t WHERE x IS NULL')).toEqual({ n: '0' });
    await expect(client.query('SELECT topk_agg(x, 0) FROM t')).rejects.toThrow(/k must be an integer between 1 and 100000/);
  });

  it('keyed_max/keyed_min over a table equal PostgreSQL\'s ordering of the rows, in the value\'s type', async () => {
    const exact = (await client.query(`SELECT g,
        (array_agg(val ORDER BY k DESC, val DESC NULLS LAST) FILTER (WHERE k IS NOT NULL))[1] AS kmax,
        (array_agg(val ORDER BY k, val NULLS LAST) FILTER (WHERE k IS NOT NULL))[1] AS kmin,
        (array_agg(x ORDER BY ts DESC, x DESC NULLS LAST))[1] AS latest
      FROM t GROUP BY g ORDER BY g`)).rows;
    const result = await client.query('SELECT g, keyed_max(k, val) AS kmax, keyed_min(k, val) AS kmin, keyed_max(ts, x) AS latest FROM t GROUP BY g ORDER BY g');
    expect(result.rows).toEqual(exact);
    expect(result.fields.map((f) => f.dataTypeID)).toEqual([23, 25, 25, 23]);
    const typed = (await client.query("SELECT keyed_min(g, g * 1.5) AS m, keyed_max(g::text, g) AS t FROM generate_series(1, 12) AS g")).rows[0];
    expect(typed).toEqual({ m: '1.5', t: 9 });
  });
});
