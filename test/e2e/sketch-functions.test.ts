import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { describe, expect, it } from 'vitest';
import { rng, zipf } from '../support/random.ts';
import { startSluice, tempDataDir } from '../support/sluice.ts';

/**
 * PipelineDB's named sketch aggregates in continuous views (topk_agg, …),
 * merged batch after batch by the engine, and their companion functions
 * (topk_values, …) read over the wire by PostgreSQL from the bytea states,
 * checked against PostgreSQL's exact answers over the same rows.
 */
async function copyRows(client: pg.Client, relation: string, columns: string, rows: string[]): Promise<void> {
  await pipeline(Readable.from([rows.join('\n') + '\n']), client.query(copyFrom(`COPY ${relation} (${columns}) FROM STDIN`)));
}

describe('sketch functions', () => {
  it('topk_agg finds the exact heavy hitters of a skewed stream, weighted or not, read with topk/topk_values/topk_freqs', async () => {
    const dataDir = tempDataDir();
    let sluice = await startSluice({ dataDir });
    let client = await sluice.client();
    await client.query('CREATE STREAM s (g text, x int, w int)');
    await client.query('CREATE TABLE t (g text, x int, w int)');
    await client.query(`CREATE VIEW v AS SELECT g, topk_agg(x, 5) AS top, topk_agg('v' || x, 3, w) AS wtop, count(*) FROM s GROUP BY g`);
    await client.query('CREATE VIEW whole AS SELECT topk_agg(x, 10) AS top FROM s WHERE w > 1');
    // Zipf(1.2) over 5000 values in two groups, 60k rows in 8 batches, with a restart midway.
    const next = zipf(rng(7), 5000, 1.2);
    const r = rng(8);
    for (let batch = 0; batch < 8; batch++) {
      const rows = Array.from({ length: 7500 }, () => `${r() < 0.5 ? 'a' : 'b'}\t${next()}\t${1 + Math.floor(r() * 4)}`);
      await copyRows(client, 's', 'g, x, w', rows);
      await copyRows(client, 't', 'g, x, w', rows);
      if (batch === 3) {
        await sluice.stop();
        sluice = await startSluice({ dataDir });
        client = await sluice.client();
      }
    }
    const types = (await client.query('SELECT top, wtop FROM v LIMIT 0')).fields.map((f) => f.dataTypeID);
    expect(types).toEqual([17, 17]); // bytea: PipelineDB had its own topk type

    for (const g of ['a', 'b']) {
      const exact = await client.query('SELECT x::text AS value, count(*)::int AS n FROM t WHERE g = $1 GROUP BY x ORDER BY n DESC, x::text LIMIT 5', [g]);
      const view = (await client.query('SELECT topk_values(top) AS vs, topk_freqs(top) AS fs, count::int FROM v WHERE g = $1', [g])).rows[0];
      expect(view.vs).toEqual(exact.rows.map((e) => e.value));
      // Counts are exact while fewer distinct values than the summary's 100 counters have been seen; here they are
      // upper bounds, over by at most total / capacity.
      view.fs.map(Number).forEach((f: number, i: number) => {
        expect(f).toBeGreaterThanOrEqual(exact.rows[i].n);
        expect(f - exact.rows[i].n).toBeLessThanOrEqual(view.count / 100);
      });
      const rows = (await client.query('SELECT t.value, t.frequency::int FROM v, topk(v.top) AS t WHERE g = $1', [g])).rows;
      expect(rows.map((row) => row.value)).toEqual(view.vs);
      expect(rows.map((row) => row.frequency)).toEqual(view.fs.map(Number));

      const weighted = await client.query(`SELECT 'v' || x AS value, sum(w)::int AS n FROM t WHERE g = $1 GROUP BY x ORDER BY n DESC, 'v' || x LIMIT 3`, [g]);
      const wview = (await client.query('SELECT topk_values(wtop) AS vs FROM v WHERE g = $1', [g])).rows[0];
      expect(wview.vs).toEqual(weighted.rows.map((e) => e.value));
    }
    const whole = await client.query('SELECT x::text AS value FROM t WHERE w > 1 GROUP BY x ORDER BY count(*) DESC, x::text LIMIT 10');
    const top = (await client.query('SELECT topk_values(top)::int[] AS vs FROM whole')).rows[0].vs;
    expect(top.map(String)).toEqual(whole.rows.map((e) => e.value));

    // Errors: a k that is not a positive integer, a weight per row but k per view.
    await expect(client.query('CREATE VIEW bad AS SELECT topk_agg(x, 0) FROM s')).rejects.toThrow(/k must be an integer/);
    await expect(client.query('CREATE VIEW bad AS SELECT topk_agg(x, w) FROM s')).rejects.toThrow(/not a constant/);
    // Over a table topk_agg is an ordinary aggregate, with the same heavy hitters.
    expect((await client.query('SELECT topk_values(topk_agg(x, 10)) AS vs FROM t WHERE w > 1')).rows[0].vs).toEqual(whole.rows.map((e) => e.value));
    await sluice.stop({ removeData: true });
  });

  it('hll_agg within 2% per group, hll_union_agg across groups, hll_union of columns and a lower precision', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g int, u int, x numeric)');
    await client.query('CREATE TABLE t (g int, u int, x numeric)');
    await client.query('CREATE VIEW v AS SELECT g, hll_agg(u) AS users, hll_agg(u * 7, 10) AS coarse, hll_agg(x) AS xs, count(DISTINCT u) AS n FROM s GROUP BY g');
    const r = rng(11);
    for (let batch = 0; batch < 6; batch++) {
      // Group 0 stays small (sparse states, counted almost exactly); groups 1 and 2 grow to tens of thousands.
      const rows = Array.from({ length: 10_000 }, () => {
        const g = Math.floor(r() * 3);
        const u = g === 0 ? Math.floor(r() * 300) : Math.floor(r() * 60_000) + g * 20_000;
        return `${g}\t${u}\t${(u % 50).toFixed(r() < 0.5 ? 1 : 2)}`;
      });
      await copyRows(client, 's', 'g, u, x', rows);
      await copyRows(client, 't', 'g, u, x', rows);
    }
    const view = (await client.query('SELECT g, hll_cardinality(users)::int AS users, hll_cardinality(coarse)::int AS coarse, hll_cardinality(xs)::int AS xs, n::int FROM v ORDER BY g')).rows;
    const exact = (await client.query('SELECT g, count(DISTINCT u)::int AS users, count(DISTINCT x)::int AS xs FROM t GROUP BY g ORDER BY g')).rows;
    expect(view.map((row) => row.g)).toEqual([0, 1, 2]);
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(view[i].users - exact[i].users) / exact[i].users).toBeLessThan(0.02);
      // Same values, same sketch: hll_agg(u) and count(DISTINCT u) agree.
      expect(view[i].users).toBe(view[i].n);
      // p = 10: 1024 registers, standard error 3.25%.
      expect(Math.abs(view[i].coarse - exact[i].users) / exact[i].users).toBeLessThan(0.1);
      // 1.0 and 1.00 are one numeric value.
      expect(view[i].xs).toBe(exact[i].xs);
    }
    expect(view[0].users).toBe(exact[0].users);
    const all = (await client.query('SELECT hll_cardinality(hll_union_agg(users))::int AS n, hll_cardinality(hll_union_agg(coarse))::int AS c FROM v')).rows[0];
    const allExact = (await client.query('SELECT count(DISTINCT u)::int AS n FROM t')).rows[0].n;
    expect(Math.abs(all.n - allExact) / allExact).toBeLessThan(0.02);
    expect(Math.abs(all.c - allExact) / allExact).toBeLessThan(0.1);
    const pair = (await client.query('SELECT hll_cardinality(hll_union(a.users, b.users))::int AS n FROM v a, v b WHERE a.g = 1 AND b.g = 2')).rows[0].n;
    const pairExact = (await client.query('SELECT count(DISTINCT u)::int AS n FROM t WHERE g IN (1, 2)')).rows[0].n;
    expect(Math.abs(pair - pairExact) / pairExact).toBeLessThan(0.02);
    // A union with a coarser sketch is at the coarser precision.
    const mixed = (await client.query('SELECT get_byte(hll_union(users, coarse), 2) AS p FROM v WHERE g = 1')).rows[0].p;
    expect(mixed).toBe(10);
    await expect(client.query('CREATE VIEW bad AS SELECT hll_agg(u, 30) FROM s')).rejects.toThrow(/p must be an integer between 4 and 18/);
    await expect(client.query('SELECT hll_cardinality(topk_agg) FROM (SELECT $1::bytea AS topk_agg) AS x', ['\\x0204'])).rejects.toThrow(/expected a hll state/);
    await sluice.stop({ removeData: true });
  });

  it('freq_agg never underestimates and stays within eps·total; freq_total and freq_norm', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, x int, name text)');
    await client.query('CREATE TABLE t (g text, x int, name text)');
    await client.query(`CREATE VIEW v AS SELECT g, freq_agg(x) AS fx, freq_agg(name, 0.01, 0.99) AS fname, count(*) FROM s GROUP BY g`);
    const next = zipf(rng(21), 4000, 1.05);
    const r = rng(22);
    for (let batch = 0; batch < 5; batch++) {
      const rows = Array.from({ length: 8000 }, () => {
        const x = next();
        return `${r() < 0.7 ? 'a' : 'b'}\t${x}\tname-${x % 997}`;
      });
      await copyRows(client, 's', 'g, x, name', rows);
      await copyRows(client, 't', 'g, x, name', rows);
    }
    for (const g of ['a', 'b']) {
      const total = Number((await client.query('SELECT count(*) FROM t WHERE g = $1', [g])).rows[0].count);
      const view = (await client.query('SELECT freq_total(fx)::int AS tx, freq_total(fname)::int AS tn, count::int FROM v WHERE g = $1', [g])).rows[0];
      expect(view).toEqual({ tx: total, tn: total, count: total });
      for (const [column, eps, expr] of [['fx', 0.002, 'x'], ['fname', 0.01, 'name']] as const) {
        // Every distinct value of the group, plus some never seen.
        const rows = (await client.query(
          `SELECT e.value, e.n, freq(v.${column}, e.value) AS f FROM v, (SELECT ${expr} AS value, count(*)::int AS n FROM t WHERE g = $1 GROUP BY 1
            UNION ALL SELECT ${expr === 'x' ? '-1' : "'never'"}, 0) AS e WHERE v.g = $1`,
          [g],
        )).rows;
        let within = 0;
        for (const row of rows) {
          expect(Number(row.f)).toBeGreaterThanOrEqual(row.n);
          if (Number(row.f) - row.n <= eps * total) within++;
        }
        expect(within / rows.length).toBeGreaterThanOrEqual(0.99);
      }
      const norm = (await client.query('SELECT freq_norm(fx, 1) AS n, freq(fx, 1)::float8 / freq_total(fx) AS want FROM v WHERE g = $1', [g])).rows[0];
      expect(norm.n).toBeCloseTo(norm.want, 12);
    }
    // A literal is hashed as its text: 5 and '5' are one value of an int column.
    const five = (await client.query(`SELECT freq(fx, 5) AS a, freq(fx, '5'::text) AS b, freq(fx, NULL::int) AS c FROM v WHERE g = 'a'`)).rows[0];
    expect(five.a).toBe(five.b);
    expect(five.c).toBe('0');
    await expect(client.query('CREATE VIEW bad AS SELECT freq_agg(x, 2) FROM s')).rejects.toThrow(/eps must be between 0 and 1/);
    await sluice.stop({ removeData: true });
  });

  it('bloom_agg has no false negatives and a false-positive rate near p; bloom_cardinality', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, u int)');
    await client.query('CREATE TABLE t (g text, u int)');
    await client.query(`CREATE VIEW v AS SELECT g, bloom_agg(u) AS seen, bloom_agg('user-' || u, 0.1, 2000) AS loose FROM s GROUP BY g`);
    const r = rng(31);
    for (let batch = 0; batch < 3; batch++) {
      // Group a: ~11k distinct users (below n = 16384); group b: a few.
      const rows = Array.from({ length: 4000 }, () => (r() < 0.95 ? `a\t${Math.floor(r() * 1_000_000)}` : `b\t${Math.floor(r() * 30)}`));
      await copyRows(client, 's', 'g, u', rows);
      await copyRows(client, 't', 'g, u', rows);
    }
    for (const [g, column, expr, p] of [['a', 'seen', 'u', 0.02], ['b', 'seen', 'u', 0.02], ['b', 'loose', "'user-' || u", 0.1]] as const) {
      const negatives = (await client.query(
        `SELECT count(*)::int AS n FROM v, (SELECT DISTINCT ${expr} AS value FROM t WHERE g = $1) AS e WHERE v.g = $1 AND NOT bloom_contains(v.${column}, e.value)`,
        [g],
      )).rows[0].n;
      expect(negatives).toBe(0);
      const never = column === 'seen' ? 'generate_series(2000000, 2004999)' : "(SELECT 'user-' || i FROM generate_series(2000000, 2004999) AS i)";
      const fpr = (await client.query(`SELECT avg(bloom_contains(v.${column}, x)::int)::float8 AS r FROM v, ${never} AS x WHERE v.g = $1`, [g])).rows[0].r;
      expect(fpr).toBeLessThan(g === 'a' ? p * 1.5 : 0.01);
      const card = Number((await client.query(`SELECT bloom_cardinality(${column}) AS n FROM v WHERE g = $1`, [g])).rows[0].n);
      const exact = Number((await client.query(`SELECT count(DISTINCT ${expr}) AS n FROM t WHERE g = $1`, [g])).rows[0].n);
      expect(Math.abs(card - exact) / exact).toBeLessThan(0.05);
    }
    // Filled to its n distinct values, the false-positive rate is about p.
    await client.query('CREATE VIEW full_filter AS SELECT bloom_agg(u, 0.05, 5000) AS b FROM s WHERE g = $$c$$');
    await copyRows(client, 's', 'g, u', Array.from({ length: 5000 }, (_, i) => `c\t${i}`));
    const full = (await client.query('SELECT avg(bloom_contains(b, x)::int)::float8 AS r FROM full_filter, generate_series(5000, 14999) AS x')).rows[0];
    const all = (await client.query('SELECT bool_and(bloom_contains(b, x)) AS all FROM full_filter, generate_series(0, 4999) AS x')).rows[0];
    expect(all.all).toBe(true);
    expect(full.r).toBeGreaterThan(0.03);
    expect(full.r).toBeLessThan(0.07);
    await sluice.stop({ removeData: true });
  });

  it('keyed_max/keyed_min, first_values and set_agg/set_cardinality equal PostgreSQL over the same rows', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g int, k int, name text, x float8, ts timestamptz)');
    await client.query('CREATE TABLE t (g int, k int, name text, x float8, ts timestamptz)');
    await client.query(`CREATE VIEW v AS SELECT g, keyed_max(k, name) AS kmax, keyed_min(ts, x) AS kmin, first_values(5, x) AS fx,
      first_values(3, name) AS fname, set_agg(k % 50) AS ks, set_cardinality(set_agg(name)) AS names FROM s GROUP BY g`);
    const r = rng(41);
    for (let batch = 0; batch < 5; batch++) {
      const rows = Array.from({ length: 3000 }, () => {
        const k = r() < 0.05 ? '\\N' : String(Math.floor(r() * 100_000));
        const name = r() < 0.05 ? '\\N' : `n${Math.floor(r() * 5000)}`;
        const x = r() < 0.05 ? '\\N' : (r() * 1e6 - 5e5).toFixed(3);
        const ts = new Date(Date.UTC(2024, 0, 1) + Math.floor(r() * 1e10)).toISOString();
        return `${Math.floor(r() * 4)}\t${k}\t${name}\t${x}\t${ts}`;
      });
      await copyRows(client, 's', 'g, k, name, x, ts', rows);
      await copyRows(client, 't', 'g, k, name, x, ts', rows);
    }
    const view = (await client.query('SELECT g, kmax, kmin, fx, fname, ks, names::int FROM v ORDER BY g')).rows;
    const exact = (await client.query(`SELECT g,
        (array_agg(name ORDER BY k DESC, name DESC NULLS LAST) FILTER (WHERE k IS NOT NULL))[1] AS kmax,
        (array_agg(x ORDER BY ts ASC, x ASC NULLS LAST) FILTER (WHERE ts IS NOT NULL))[1] AS kmin,
        (array_agg(x ORDER BY x) FILTER (WHERE x IS NOT NULL))[1:5] AS fx,
        (array_agg(name ORDER BY name) FILTER (WHERE name IS NOT NULL))[1:3] AS fname,
        array_agg(DISTINCT k % 50 ORDER BY k % 50) AS ks,
        cardinality(array_agg(DISTINCT name))::int AS names
      FROM t GROUP BY g ORDER BY g`)).rows;
    expect(view).toEqual(exact);
    expect(view[0].ks).toContain(null);
    // Over a table, set_agg and first_values are PostgreSQL aggregates too.
    const table = (await client.query('SELECT set_agg(k % 50) AS ks, first_values(5, x) AS fx FROM t WHERE g = 0')).rows[0];
    expect(table).toEqual({ ks: exact[0].ks, fx: exact[0].fx });
    const types = (await client.query('SELECT kmax, kmin, fx, fname, ks, names FROM v LIMIT 0')).fields.map((f) => f.dataTypeID);
    expect(types).toEqual([25, 701, 1022, 1009, 1007, 20]);
    // combine() across the groups: what the same aggregates give over the whole table.
    const combined = (await client.query('SELECT combine(kmax) AS kmax, combine(kmin) AS kmin, combine(fx) AS fx, combine(fname) AS fname FROM v')).rows[0];
    const whole = (await client.query(`SELECT
        (array_agg(name ORDER BY k DESC, name DESC NULLS LAST) FILTER (WHERE k IS NOT NULL))[1] AS kmax,
        (array_agg(x ORDER BY ts ASC, x ASC NULLS LAST) FILTER (WHERE ts IS NOT NULL))[1] AS kmin,
        (array_agg(x ORDER BY x) FILTER (WHERE x IS NOT NULL))[1:5] AS fx,
        (array_agg(name ORDER BY name) FILTER (WHERE name IS NOT NULL))[1:3] AS fname FROM t`)).rows[0];
    expect(combined).toEqual(whole);
    // first_values of several values: the smallest tuples, as PostgreSQL sorts rows (a tuple of NULLs only is skipped).
    await client.query('CREATE VIEW tuples AS SELECT g, first_values(2, name, k, x) AS fs FROM s GROUP BY g');
    const more = ['9\tn2\t5\t1', '9\tn1\t\\N\t2', '9\t\\N\t3\t\\N', '9\t\\N\t\\N\t\\N', '9\tn1\t\\N\t1'];
    await copyRows(client, 's', 'g, name, k, x', more);
    await copyRows(client, 't', 'g, name, k, x', more);
    const overTable = (await client.query('SELECT first_values(2, name, k, x)::text AS fs FROM t WHERE g = 9')).rows[0].fs;
    expect(overTable).toBe('{"(n1,,1)","(n1,,2)"}');
    expect((await client.query('SELECT fs::text FROM tuples WHERE g = 9')).rows).toEqual([{ fs: overTable }]);
    await expect(client.query('CREATE VIEW bad AS SELECT first_values(k, x) FROM s')).rejects.toThrow(/not a constant/);
    await sluice.stop({ removeData: true });
  });

  it('dist_agg: dist_quantile within 1% rank error and dist_cdf within 1% of the exact fraction', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, x float8, n int)');
    await client.query('CREATE TABLE t (g text, x float8, n int)');
    await client.query('CREATE VIEW v AS SELECT g, dist_agg(x) AS d, dist_agg(n, 50) AS dn, percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50 FROM s GROUP BY g');
    const r = rng(51);
    for (let batch = 0; batch < 6; batch++) {
      const rows = Array.from({ length: 8000 }, () => `${r() < 0.5 ? 'a' : 'b'}\t${Math.exp(r() * 12).toFixed(4)}\t${Math.floor(r() ** 2 * 1000)}`);
      await copyRows(client, 's', 'g, x, n', rows);
      await copyRows(client, 't', 'g, x, n', rows);
    }
    // The rank range of v; an integer column's estimates interpolate between integers, so they are read as the integers around them.
    const rank = async (g: string, column: string, v: number) =>
      (await client.query(
        `SELECT count(*) FILTER (WHERE ${column}::float8 < $2::float8)::float8 / count(*) AS below, count(*) FILTER (WHERE ${column}::float8 <= $3::float8)::float8 / count(*) AS upto FROM t WHERE g = $1`,
        [g, column === 'n' ? Math.floor(v) : v, column === 'n' ? Math.ceil(v) : v],
      )).rows[0];
    for (const g of ['a', 'b']) {
      for (const [column, state, tolerance] of [['x', 'd', 0.01], ['n', 'dn', 0.02]] as const) {
        for (const q of [0.01, 0.1, 0.5, 0.9, 0.99]) {
          const estimate = (await client.query(`SELECT dist_quantile(${state}, $2) AS v FROM v WHERE g = $1`, [g, q])).rows[0].v;
          const { below, upto } = await rank(g, column, estimate);
          const error = q < below ? below - q : q > upto ? q - upto : 0;
          expect({ g, column, q, ok: error < tolerance }).toEqual({ g, column, q, ok: true });
        }
        for (const v of column === 'x' ? [10, 1000, 50_000] : [5, 100, 700]) {
          const cdf = (await client.query(`SELECT dist_cdf(${state}, $2) AS c FROM v WHERE g = $1`, [g, v])).rows[0].c;
          const { below, upto } = await rank(g, column, v);
          expect(Math.abs(cdf - (below + upto) / 2)).toBeLessThan(tolerance);
        }
      }
      // percentile_cont(0.5) in the same view keeps its own digest: the same estimate.
      const same = (await client.query('SELECT dist_quantile(d, 0.5) AS a, p50 AS b FROM v WHERE g = $1', [g])).rows[0];
      expect(same.a).toBe(same.b);
    }
    const extremes = (await client.query(`SELECT dist_quantile(d, 0) AS lo, dist_quantile(d, 1) AS hi, dist_cdf(d, -1) AS below, dist_cdf(d, 1e9) AS above FROM v WHERE g = 'a'`)).rows[0];
    const exact = (await client.query(`SELECT min(x) AS lo, max(x) AS hi FROM t WHERE g = 'a'`)).rows[0];
    expect(extremes).toEqual({ lo: exact.lo, hi: exact.hi, below: 0, above: 1 });
    await expect(client.query('CREATE VIEW bad AS SELECT dist_agg(x, 5) FROM s')).rejects.toThrow(/compression must be between 10 and 10000/);
    await sluice.stop({ removeData: true });
  });
  it('bloom_union_agg over a view\'s groups is bloom_agg over all their rows, byte for byte; bloom_intersection_agg answers as both filters', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, u int)');
    await client.query('CREATE TABLE t (g text, u int)');
    await client.query('CREATE VIEW v AS SELECT g, bloom_agg(u) AS seen, bloom_agg(u, 0.1, 2000) AS loose FROM s GROUP BY g');
    await client.query('CREATE VIEW whole AS SELECT bloom_agg(u) AS seen, bloom_agg(u, 0.1, 2000) AS loose FROM s');
    await client.query(`CREATE VIEW ab AS SELECT bloom_agg(u) AS seen FROM s WHERE g IN ('a', 'b')`);
    const r = rng(61);
    for (let batch = 0; batch < 3; batch++) {
      // a and b overlap on 2000..2999; c is small (a sparse filter).
      const rows = Array.from({ length: 3000 }, () => {
        const x = r();
        return x < 0.45 ? `a\t${Math.floor(r() * 3000)}` : x < 0.9 ? `b\t${2000 + Math.floor(r() * 3000)}` : `c\t${Math.floor(r() * 40)}`;
      });
      await copyRows(client, 's', 'g, u', rows);
      await copyRows(client, 't', 'g, u', rows);
    }
    const union = (await client.query(`SELECT bloom_union_agg(seen) = (SELECT seen FROM whole) AS all, bloom_union_agg(loose) = (SELECT loose FROM whole) AS loose,
      bloom_union_agg(seen) FILTER (WHERE g IN ('a', 'b')) = (SELECT seen FROM ab) AS ab FROM v`)).rows[0];
    expect(union).toEqual({ all: true, loose: true, ab: true });
    // Intersection: a value is in it exactly when it is in both filters; every value of both groups is.
    const probe = (await client.query(`SELECT count(*)::int AS n,
        count(*) FILTER (WHERE bloom_contains(i.f, x) <> (bloom_contains(a.seen, x) AND bloom_contains(b.seen, x)))::int AS differ,
        count(*) FILTER (WHERE bloom_contains(i.f, x))::int AS inside
      FROM (SELECT bloom_intersection_agg(seen) AS f FROM v WHERE g IN ('a', 'b')) AS i, v a, v b, generate_series(0, 8000) AS x
      WHERE a.g = 'a' AND b.g = 'b'`)).rows[0];
    expect(probe.differ).toBe(0);
    const both = (await client.query(`SELECT count(*)::int AS n, bool_and(bloom_contains(i.f, e.u)) AS all
      FROM (SELECT bloom_intersection_agg(seen) AS f FROM v WHERE g IN ('a', 'b')) AS i,
           (SELECT u FROM t WHERE g = 'a' INTERSECT SELECT u FROM t WHERE g = 'b') AS e`)).rows[0];
    expect(both.n).toBeGreaterThan(400);
    expect(both.all).toBe(true);
    // Few false positives beyond the common values.
    expect(probe.inside - both.n).toBeLessThan(0.05 * (probe.n - both.n));
    const err = await client.query('SELECT bloom_union_agg(f) FROM (SELECT seen AS f FROM v UNION ALL SELECT loose FROM v) AS x').catch((e) => e);
    expect(err.code).toBe('22023');
    const err2 = await client.query('SELECT bloom_intersection_agg(f) FROM (SELECT seen AS f FROM v UNION ALL SELECT loose FROM v) AS x').catch((e) => e);
    expect(err2.code).toBe('22023');
    await sluice.stop({ removeData: true });
  });

  it('freq_merge_agg over a view\'s groups is freq_agg over all rows, byte for byte; freq_add folds rows in as the view would', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, x int)');
    await client.query('CREATE TABLE t (g text, x int)');
    await client.query('CREATE VIEW v AS SELECT g, freq_agg(x) AS fx, freq_agg(x, 0.01, 0.99) AS coarse FROM s GROUP BY g');
    await client.query('CREATE VIEW whole AS SELECT freq_agg(x) AS fx FROM s');
    await client.query(`CREATE VIEW ab AS SELECT freq_agg(x) AS fx FROM s WHERE g IN ('a', 'b')`);
    const next = zipf(rng(71), 4000, 1.05);
    const r = rng(72);
    for (let batch = 0; batch < 4; batch++) {
      // a: a large skewed group (a dense sketch); b: 30 distinct values; c: the rest.
      const rows = Array.from({ length: 6000 }, () => {
        const x = r();
        return x < 0.6 ? `a\t${next()}` : x < 0.63 ? `b\t${Math.floor(r() * 30) * 7}` : `c\t${next()}`;
      });
      await copyRows(client, 's', 'g, x', rows);
      await copyRows(client, 't', 'g, x', rows);
    }
    const merged = (await client.query('SELECT freq_merge_agg(fx) = (SELECT fx FROM whole) AS same, freq_total(freq_merge_agg(fx))::int AS total FROM v')).rows[0];
    const total = Number((await client.query('SELECT count(*) FROM t')).rows[0].count);
    expect(merged).toEqual({ same: true, total });
    // Never below PostgreSQL's count of any value.
    const under = (await client.query(`SELECT count(*)::int AS n FROM (SELECT freq_merge_agg(fx) AS f FROM v) AS m, (SELECT x, count(*) AS n FROM t GROUP BY x) AS e
      WHERE freq(m.f, e.x) < e.n`)).rows[0].n;
    expect(under).toBe(0);
    // Group b's rows added to group a's sketch, one (value, count) at a time: the sketch of a and b's rows.
    const folded = (await client.query(`WITH RECURSIVE e AS (SELECT x, count(*) AS n, row_number() OVER (ORDER BY x) AS i FROM t WHERE g = 'b' GROUP BY x),
        f(i, s) AS (SELECT 0::bigint, (SELECT fx FROM v WHERE g = 'a') UNION ALL SELECT e.i, freq_add(f.s, e.x, e.n) FROM f JOIN e ON e.i = f.i + 1)
      SELECT (SELECT s FROM f ORDER BY i DESC LIMIT 1) = (SELECT fx FROM ab) AS same, (SELECT count(*) FROM e)::int AS values`)).rows[0];
    expect(folded).toEqual({ same: true, values: 30 });
    const one = (await client.query(`SELECT freq(freq_add(fx, 7), 7) - freq(fx, 7) AS d1, freq(freq_add(fx, -3, 5), -3) - freq(fx, -3) AS d5,
      freq_add(fx, NULL::int) = fx AS same FROM v WHERE g = 'b'`)).rows[0];
    expect(one).toEqual({ d1: '1', d5: '5', same: true });
    const err = await client.query('SELECT freq_merge_agg(f) FROM (SELECT fx AS f FROM v UNION ALL SELECT coarse FROM v) AS x').catch((e) => e);
    expect(err.code).toBe('22023');
    expect((await client.query(`SELECT freq_add(fx, 1, -1) FROM v WHERE g = 'b'`).catch((e) => e)).code).toBe('22023');
    await sluice.stop({ removeData: true });
  });

  it('topk_increment folds rows into a view\'s top-k as the view would, byte for byte, with PostgreSQL\'s exact top values', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, x int)');
    await client.query('CREATE TABLE t (g text, x int)');
    await client.query('CREATE VIEW v AS SELECT g, topk_agg(x, 5) AS top FROM s GROUP BY g');
    await client.query(`CREATE VIEW ab AS SELECT topk_agg(x, 5) AS top FROM s WHERE g IN ('a', 'b')`);
    const r = rng(81);
    for (let batch = 0; batch < 3; batch++) {
      // 70 distinct values in all (fewer than the 100 counters): counts are exact.
      const rows = Array.from({ length: 2000 }, () => (r() < 0.6 ? `a\t${Math.floor(r() ** 2 * 50)}` : `b\t${20 + Math.floor(r() * 50)}`));
      await copyRows(client, 's', 'g, x', rows);
      await copyRows(client, 't', 'g, x', rows);
    }
    const folded = (await client.query(`WITH RECURSIVE e AS (SELECT x, count(*) AS n, row_number() OVER (ORDER BY x) AS i FROM t WHERE g = 'b' GROUP BY x),
        f(i, s) AS (SELECT 0::bigint, (SELECT top FROM v WHERE g = 'a') UNION ALL SELECT e.i, topk_increment(f.s, e.x, e.n) FROM f JOIN e ON e.i = f.i + 1)
      SELECT s = (SELECT top FROM ab) AS same, topk_values(s) AS vs, topk_freqs(s)::int[] AS fs FROM f ORDER BY i DESC LIMIT 1`)).rows[0];
    const exact = (await client.query(`SELECT x::text AS value, count(*)::int AS n FROM t GROUP BY x ORDER BY n DESC, x::text LIMIT 5`)).rows;
    expect(folded).toEqual({ same: true, vs: exact.map((e) => e.value), fs: exact.map((e) => e.n) });
    const one = (await client.query(`SELECT topk_increment(top, 3) = topk_increment(top, 3, 1) AS same, topk_increment(top, NULL::int) = top AS unchanged,
      topk_freqs(topk_increment(top, (topk_values(top))[2]::int, 1000))::int[] AS fs, topk_freqs(top)::int[] AS before FROM v WHERE g = 'a'`)).rows[0];
    expect(one.same).toBe(true);
    expect(one.unchanged).toBe(true);
    expect(one.fs[0]).toBe(one.before[1] + 1000);
    expect((await client.query(`SELECT topk_increment(top, 1, -2) FROM v WHERE g = 'a'`).catch((e) => e)).code).toBe('22023');
    await sluice.stop({ removeData: true });
  });

  it('dist_add folds values into a view\'s digest: exactly the view\'s digest of the same rows while small, within 1% rank error when large', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, x float8)');
    await client.query('CREATE TABLE t (g text, x float8)');
    await client.query('CREATE VIEW v AS SELECT g, dist_agg(x) AS d FROM s GROUP BY g');
    await client.query(`CREATE VIEW ab AS SELECT dist_agg(x) AS d FROM s WHERE g IN ('a', 'b')`);
    const r = rng(91);
    // a, b: 30 and 12 values (every value its own centroid); c: 30k values; e: 300 values added to c's digest.
    const rows = [
      ...Array.from({ length: 30 }, () => `a\t${(r() * 100).toFixed(2)}`),
      ...Array.from({ length: 12 }, () => `b\t${(r() * 200 - 50).toFixed(1)}`),
      ...Array.from({ length: 30_000 }, () => `c\t${Math.exp(r() * 10).toFixed(4)}`),
      ...Array.from({ length: 300 }, () => `e\t${(r() * 30_000).toFixed(1)}`),
    ];
    await copyRows(client, 's', 'g, x', rows);
    await copyRows(client, 't', 'g, x', rows);
    const fold = (into: string, from: string) => `WITH RECURSIVE e AS (SELECT x, row_number() OVER (ORDER BY x) AS i FROM t WHERE g = '${from}'),
        f(i, s) AS (SELECT 0::bigint, (SELECT d FROM v WHERE g = '${into}') UNION ALL SELECT e.i, dist_add(f.s, e.x) FROM f JOIN e ON e.i = f.i + 1)
      SELECT s FROM f ORDER BY i DESC LIMIT 1`;
    const small = (await client.query(`SELECT s = (SELECT d FROM ab) AS same, dist_quantile(s, 0) AS lo, dist_quantile(s, 1) AS hi FROM (${fold('a', 'b')}) AS x`)).rows[0];
    const range = (await client.query(`SELECT min(x) AS lo, max(x) AS hi FROM t WHERE g IN ('a', 'b')`)).rows[0];
    expect(small).toEqual({ same: true, ...range });
    const large = (await client.query(fold('c', 'e'))).rows[0].s;
    for (const q of [0.01, 0.1, 0.5, 0.9, 0.99]) {
      const estimate = (await client.query('SELECT dist_quantile($1::bytea, $2) AS v', [large, q])).rows[0].v;
      const { below, upto } = (await client.query(`SELECT count(*) FILTER (WHERE x < $1)::float8 / count(*) AS below, count(*) FILTER (WHERE x <= $1)::float8 / count(*) AS upto
        FROM t WHERE g IN ('c', 'e')`, [estimate])).rows[0];
      const error = q < below ? below - q : q > upto ? q - upto : 0;
      expect({ q, ok: error < 0.01 }).toEqual({ q, ok: true });
    }
    // A weighted value counts as that many: the median moves to a value added a million times.
    const weighted = (await client.query(`SELECT dist_quantile(dist_add(d, 123.25, 1000000), 0.5) AS m, dist_add(d, 'NaN') = d AS nan FROM v WHERE g = 'c'`)).rows[0];
    expect(weighted.nan).toBe(true);
    expect(Math.abs(weighted.m - 123.25)).toBeLessThan(1);
    expect((await client.query(`SELECT dist_add(d, 1, 0) FROM v WHERE g = 'a'`).catch((e) => e)).code).toBe('22023');
    await sluice.stop({ removeData: true });
  });

  it('hll_add folds values into a view\'s sketch as the view would, byte for byte, sparse and dense', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, u int)');
    await client.query('CREATE TABLE t (g text, u int)');
    await client.query('CREATE VIEW v AS SELECT g, hll_agg(u) AS users FROM s GROUP BY g');
    await client.query(`CREATE VIEW ab AS SELECT hll_agg(u) AS users FROM s WHERE g IN ('a', 'b')`);
    await client.query(`CREATE VIEW cb AS SELECT hll_agg(u) AS users FROM s WHERE g IN ('c', 'b')`);
    const r = rng(101);
    // a: ~300 distinct (sparse); c: ~20k distinct (dense); b: 25 values, some of them in a.
    const rows = [
      ...Array.from({ length: 600 }, () => `a\t${Math.floor(r() * 300)}`),
      ...Array.from({ length: 30_000 }, () => `c\t${100_000 + Math.floor(r() * 40_000)}`),
      ...Array.from({ length: 25 }, (_, i) => `b\t${i * 20}`),
    ];
    await copyRows(client, 's', 'g, u', rows);
    await copyRows(client, 't', 'g, u', rows);
    const fold = (into: string) => `WITH RECURSIVE e AS (SELECT u, row_number() OVER (ORDER BY u) AS i FROM t WHERE g = 'b'),
        f(i, s) AS (SELECT 0::bigint, (SELECT users FROM v WHERE g = '${into}') UNION ALL SELECT e.i, hll_add(f.s, e.u) FROM f JOIN e ON e.i = f.i + 1)
      SELECT s FROM f ORDER BY i DESC LIMIT 1`;
    const sparse = (await client.query(`SELECT s = (SELECT users FROM ab) AS same, hll_cardinality(s)::int AS n, get_byte(s, 3) AS dense FROM (${fold('a')}) AS x`)).rows[0];
    const exact = (await client.query(`SELECT count(DISTINCT u)::int AS n FROM t WHERE g IN ('a', 'b')`)).rows[0].n;
    // Sparse sketches of a few hundred values count them exactly.
    expect(sparse).toEqual({ same: true, n: exact, dense: 0 });
    const dense = (await client.query(`SELECT s = (SELECT users FROM cb) AS same, get_byte(s, 3) AS dense FROM (${fold('c')}) AS x`)).rows[0];
    expect(dense).toEqual({ same: true, dense: 1 });
    const one = (await client.query(`SELECT hll_add(users, NULL::int) = users AS same, hll_cardinality(hll_add(users, -1))::int - hll_cardinality(users)::int AS d FROM v WHERE g = 'a'`)).rows[0];
    expect(one).toEqual({ same: true, d: 1 });
    await sluice.stop({ removeData: true });
  });

  it('bucket_agg keeps each value in its latest bucket (by timestamp, else by arrival): bucket_ids and bucket_cardinalities equal PostgreSQL\'s count', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g text, uid int, b int2, ts timestamptz)');
    await client.query('CREATE TABLE t (g text, uid int, b int2, ts timestamptz, n serial)');
    await client.query('CREATE VIEW v AS SELECT g, bucket_agg(uid, b, ts) AS by_time, bucket_agg(uid, b) AS by_arrival FROM s GROUP BY g');
    // 20k rows over 3000 users moving between buckets -3..5, timestamps out of order across batches.
    const r = rng(77);
    for (let batch = 0; batch < 10; batch++) {
      const rows = Array.from({ length: 2000 }, () => {
        const ts = new Date(Date.UTC(2026, 0, 1) + Math.floor(r() * 86_400) * 1000).toISOString();
        return `${r() < 0.5 ? 'a' : 'b'}\t${Math.floor(r() * 3000)}\t${Math.floor(r() * 9) - 3}\t${ts}`;
      });
      await copyRows(client, 's', 'g, uid, b, ts', rows);
      await copyRows(client, 't', 'g, uid, b, ts', rows);
    }
    for (const [column, order] of [['by_time', 'ts DESC, b DESC'], ['by_arrival', 'n DESC']]) {
      const exact = await client.query(
        `SELECT g, array_agg(b ORDER BY b) AS ids, array_agg(c ORDER BY b) AS cards
         FROM (SELECT g, b, count(*)::int AS c FROM (SELECT DISTINCT ON (g, uid) g, uid, b FROM t ORDER BY g, uid, ${order}) AS latest GROUP BY g, b) AS per
         GROUP BY g ORDER BY g`,
      );
      const view = await client.query(`SELECT g, bucket_ids(${column}) AS ids, bucket_cardinalities(${column}) AS cards FROM v ORDER BY g`);
      expect(view.rows).toEqual(exact.rows);
      const one = await client.query(`SELECT bucket_cardinality(${column}, 2::int2) AS c FROM v WHERE g = 'a'`);
      expect(one.rows[0].c).toBe(exact.rows[0].cards[exact.rows[0].ids.indexOf(2)]);
    }
    // Over a table bucket_agg is an ordinary aggregate: in arrival order, the view's state.
    const overTable = (await client.query("SELECT bucket_agg(uid, b, ts ORDER BY n) AS t, bucket_agg(uid, b ORDER BY n) AS a FROM t WHERE g = 'a'")).rows[0];
    const inView = (await client.query("SELECT by_time, by_arrival FROM v WHERE g = 'a'")).rows[0];
    expect([overTable.t, overTable.a]).toEqual([inView.by_time, inView.by_arrival]);
    await sluice.stop({ removeData: true });
  });

  it('combine() merges sketch columns across groups: the same states as one view over all the rows', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM s (g int, u int, x float8)');
    const aggregates = 'count(DISTINCT u) AS users, hll_agg(u) AS hll, topk_agg(u, 4) AS top, freq_agg(u) AS freq, bloom_agg(u) AS bloom, dist_agg(x) AS dist, bucket_agg(u, (u % 3)::int2) AS b, percentile_cont(0.9) WITHIN GROUP (ORDER BY x) AS p90';
    await client.query(`CREATE VIEW per_g AS SELECT g, ${aggregates} FROM s GROUP BY g`);
    await client.query(`CREATE VIEW whole AS SELECT ${aggregates} FROM s`);
    const r = rng(12);
    const next = zipf(r, 3000, 1.1);
    for (let batch = 0; batch < 3; batch++) {
      await copyRows(client, 's', 'g, u, x', Array.from({ length: 2000 }, () => `${Math.floor(r() * 10)}\t${next()}\t${(r() * 1000).toFixed(3)}`));
    }
    const combined = (await client.query(`SELECT combine(users)::int AS users, hll_cardinality(combine(hll))::int AS hll, topk_values(combine(top)) AS top,
        freq_total(combine(freq))::int AS freq, bloom_cardinality(combine(bloom))::int AS bloom, dist_quantile(combine(dist), 0.9) AS d90,
        bucket_cardinalities(combine(b)) AS b, combine(p90) AS p90 FROM per_g`)).rows[0];
    const whole = (await client.query(`SELECT users::int, hll_cardinality(hll)::int AS hll, topk_values(top) AS top, freq_total(freq)::int AS freq,
        bloom_cardinality(bloom)::int AS bloom, dist_quantile(dist, 0.9) AS d90, bucket_cardinalities(b) AS b, p90 FROM whole`)).rows[0];
    // Unions of HyperLogLog, count-min and Bloom states are exact; top-k, buckets too here; digests merge within their error.
    expect({ ...combined, d90: undefined, p90: undefined }).toEqual({ ...whole, d90: undefined, p90: undefined });
    expect(Math.abs(combined.d90 - whole.d90)).toBeLessThan(10);
    expect(Math.abs(combined.p90 - whole.p90)).toBeLessThan(10);
    await sluice.stop({ removeData: true });
  });
});
