import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { startSluice, tempDataDir, type RunningSluice } from '../support/sluice.ts';
import { copyInto, createStreamTableAndViews, failure, valuesSql } from '../support/rows.ts';

/**
 * GROUPING SETS, CUBE, ROLLUP, SELECT DISTINCT and SELECT DISTINCT ON in
 * continuous views against PostgreSQL itself: the same random rows (NULLs
 * included, in random batch sizes, by INSERT and COPY) go into a stream and
 * into a plain table, and each view must equal its query over the table,
 * value for value, both sorted by every column.
 */

const columns = 'k text, g int, h text, v int, n numeric, id int8';
const columnNames = 'k, g, h, v, n, id';

const views: Record<string, string> = {
  rollup: 'SELECT k, g, count(*), sum(v), avg(n), min(h), max(v), GROUPING(k, g) AS gr FROM {src} GROUP BY ROLLUP (k, g)',
  cube: 'SELECT k, g, h, count(*), sum(n) AS sn, GROUPING(k) AS gk, GROUPING(g, h) AS ggh, GROUPING(h, k, g) AS ghkg FROM {src} GROUP BY CUBE (k, g, h)',
  sets: 'SELECT k, g % 3 AS g3, count(v), sum(v), GROUPING(g % 3) AS gg FROM {src} GROUP BY GROUPING SETS ((k), (g % 3), (), (k, g % 3))',
  plain_and_rollup: 'SELECT k, g, h, count(*), sum(v), GROUPING(g, h) AS gr FROM {src} GROUP BY k, ROLLUP (g, h)',
  cube_times_sets: 'SELECT k, g, h, count(*), max(n) FROM {src} GROUP BY CUBE (k), GROUPING SETS ((g), (h))',
  // PostgreSQL returns a group once per grouping set that yields it: here each (k) group twice.
  duplicate_sets: 'SELECT k, count(*), sum(v), GROUPING(k) AS gk FROM {src} GROUP BY k, ROLLUP (k)',
  group_by_distinct: 'SELECT k, g, count(*), sum(v) FROM {src} GROUP BY DISTINCT ROLLUP (k, g), ROLLUP (k)',
  positions: 'SELECT upper(k) AS uk, g, count(*), sum(n) FROM {src} GROUP BY ROLLUP (1, 2)',
  output_names: 'SELECT upper(k) AS uk, g % 2 AS odd, count(*) FROM {src} GROUP BY CUBE (uk, odd)',
  composite_elements: 'SELECT k, g, h, count(*), sum(v), GROUPING(k, g, h) AS gr FROM {src} GROUP BY ROLLUP (k, (g, h))',
  nested_sets: 'SELECT k, g, h, count(*) FROM {src} GROUP BY GROUPING SETS (k, ROLLUP (g, h), CUBE (k, h), ())',
  with_having: 'SELECT k, g, count(*), sum(v) FROM {src} GROUP BY CUBE (k, g) HAVING count(*) > 40 OR GROUPING(k, g) = 3',
  having_on_grouping: 'SELECT k, g, count(*) FROM {src} GROUP BY ROLLUP (k, g) HAVING GROUPING(g) = 1',
  where_and_filter: 'SELECT k, count(*) FILTER (WHERE v > 4) AS big, sum(n), count(h) FROM {src} WHERE g <> 3 OR g IS NULL GROUP BY ROLLUP (k)',
  expressions: "SELECT coalesce(k, 'ALL') AS kk, g, count(*) * 2 AS c2, GROUPING(k) + 10 AS gg, sum(v) - min(v) AS spread FROM {src} GROUP BY ROLLUP (k, g)",
  exact_distinct: 'SELECT k, g, exact_count_distinct(h) AS dh, count(*) FROM {src} GROUP BY CUBE (k, g)',
  // A HyperLogLog is exact at a handful of distinct values.
  sketch_distinct: 'SELECT k, count(DISTINCT h) AS dh, count(*) FROM {src} GROUP BY ROLLUP (k)',
  engine_shaped: 'SELECT g, count(*), sum(v), min(v), max(v) FROM {src} GROUP BY ROLLUP (g)',
  keys_only: 'SELECT k, g, GROUPING(k, g) AS gr FROM {src} GROUP BY ROLLUP (k, g)',
  single_set: 'SELECT k, count(*), GROUPING(k) AS gk FROM {src} GROUP BY GROUPING SETS ((k))',
  plain_distinct: 'SELECT DISTINCT k, g FROM {src}',
  distinct_expressions: 'SELECT DISTINCT upper(h) AS uh, g % 2 AS odd, v IS NULL AS nv FROM {src} WHERE k IS DISTINCT FROM \'k1\'',
  distinct_on: 'SELECT DISTINCT ON (k) k, g, v, h FROM {src} ORDER BY k, v DESC',
  distinct_on_two_keys: 'SELECT DISTINCT ON (k, g) k, g, h, n, v FROM {src} ORDER BY k, g, n NULLS FIRST, h DESC NULLS LAST',
  distinct_on_expression: 'SELECT DISTINCT ON (g % 3) g % 3 AS b, v, h, n * 2 AS n2 FROM {src} WHERE h IS NOT NULL ORDER BY g % 3, h COLLATE "C" DESC, v',
  distinct_on_positions: 'SELECT DISTINCT ON (1) upper(k) AS uk, v, g FROM {src} ORDER BY uk, v USING >, g',
  distinct_on_key_not_selected: 'SELECT DISTINCT ON (h) v, n FROM {src} ORDER BY h, v ASC NULLS FIRST, n DESC',
  distinct_on_without_order: 'SELECT DISTINCT ON (k) k, v, id FROM {src}',
};

/**
 * PostgreSQL's spelling where it differs: exact_count_distinct is
 * count(DISTINCT …), and DISTINCT ON breaks ties by arrival (id numbers the
 * rows as they arrive), which is the view's documented choice where
 * PostgreSQL's is arbitrary.
 */
const oracles: Record<string, string> = {
  exact_distinct: 'SELECT k, g, count(DISTINCT h) AS dh, count(*) FROM {src} GROUP BY CUBE (k, g)',
  distinct_on: 'SELECT DISTINCT ON (k) k, g, v, h FROM {src} ORDER BY k, v DESC, id',
  distinct_on_two_keys: 'SELECT DISTINCT ON (k, g) k, g, h, n, v FROM {src} ORDER BY k, g, n NULLS FIRST, h DESC NULLS LAST, id',
  distinct_on_expression: 'SELECT DISTINCT ON (g % 3) g % 3 AS b, v, h, n * 2 AS n2 FROM {src} WHERE h IS NOT NULL ORDER BY g % 3, h COLLATE "C" DESC, v, id',
  distinct_on_positions: 'SELECT DISTINCT ON (1) upper(k) AS uk, v, g FROM {src} ORDER BY uk, v USING >, g, id',
  distinct_on_key_not_selected: 'SELECT DISTINCT ON (h) v, n FROM {src} ORDER BY h, v ASC NULLS FIRST, n DESC, id',
  distinct_on_without_order: 'SELECT DISTINCT ON (k) k, v, id FROM {src} ORDER BY k, id',
};

type Row = (string | null)[];

function randomRow(rand: () => number, id: number): Row {
  const maybe = (text: string, p = 0.12): string | null => (rand() < p ? null : text);
  return [
    maybe(`k${Math.floor(rand() * 6)}`),
    maybe(String(Math.floor(rand() * 5))),
    maybe(['x', 'Y', 'z', 'a', 'B', 'ä'][Math.floor(rand() * 6)]),
    // Few values, so DISTINCT ON meets ties.
    maybe(String(Math.floor(rand() * 10) - 2)),
    maybe((rand() * 1000).toFixed(Math.floor(rand() * 4))),
    String(id),
  ];
}

const asText = { getTypeParser: () => (v: string) => v };

/** A query's rows as text, sorted by every column, and its column names and types. */
async function sortedRows(client: pg.Client, sql: string): Promise<{ fields: [string, number][]; rows: Row[] }> {
  const shape = await client.query(`SELECT * FROM (${sql}) AS q LIMIT 0`);
  const order = shape.fields.map((_, i) => i + 1).join(', ');
  const result = await client.query({ text: `SELECT * FROM (${sql}) AS q ORDER BY ${order}`, rowMode: 'array', types: asText });
  return { fields: shape.fields.map((f) => [f.name, f.dataTypeID]), rows: result.rows as Row[] };
}


async function feed(client: pg.Client, seed: number, from: number, count: number): Promise<number> {
  const rand = rng(seed);
  let total = from;
  for (let batch = 0; total < from + count; batch++) {
    const size = Math.min(from + count - total, 1 + Math.floor(rand() * (batch % 4 === 0 ? 700 : 90)));
    const rows = Array.from({ length: size }, (_, i) => randomRow(rand, total + i));
    total += size;
    if (batch % 2 === 0) await client.query(`INSERT INTO s (${columnNames}) VALUES ${valuesSql(rows)}`);
    else await copyInto(client, 's', columnNames, rows);
    await client.query(`INSERT INTO t (${columnNames}) VALUES ${valuesSql(rows)}`);
  }
  return total;
}

describe('grouping sets and DISTINCT in continuous views equal PostgreSQL over the same rows', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await createStreamTableAndViews(client, columns, views);
    await feed(client, 20261122, 0, 4000);
  }, 120_000);
  afterAll(() => sluice.stop({ removeData: true }));

  for (const name of Object.keys(views)) {
    const title = name.startsWith('distinct_on')
      ? `${name} (ties keep the earliest arrival; PostgreSQL's choice among ties is arbitrary)`
      : name;
    it(title, async () => {
      const oracleSql = (oracles[name] ?? views[name]).replaceAll('{src}', 't');
      const view = await sortedRows(client, `SELECT * FROM ${name}`);
      const oracle = await sortedRows(client, oracleSql);
      expect(view.fields).toEqual(oracle.fields);
      expect(oracle.rows.length).toBeGreaterThan(1);
      expect(view.rows).toEqual(oracle.rows);
    });
  }

  it('GROUPING tells a NULL key from a rolled-up one', async () => {
    const rows = (await client.query("SELECT gr, count(*)::int AS n FROM rollup WHERE k IS NULL GROUP BY gr ORDER BY gr")).rows;
    expect(rows.map((r) => r.gr)).toEqual([0, 1, 3]);
  });

  it('refuses what it cannot keep with 0A000 naming it, and the session stays usable', async () => {
    const refused: [string, RegExp][] = [
      ['CREATE VIEW bad AS SELECT DISTINCT ON (k) k, count(*) FROM s GROUP BY k ORDER BY k', /SELECT DISTINCT ON with aggregates/],
      ['CREATE VIEW bad AS SELECT DISTINCT k, count(*) FROM s GROUP BY k', /SELECT DISTINCT with aggregates/],
      ["CREATE VIEW bad WITH (sw = '1 hour') AS SELECT DISTINCT ON (k) k, v FROM s ORDER BY k, v", /sliding-window/],
      ['CREATE VIEW bad AS SELECT DISTINCT ON (k) k, v FROM (SELECT * FROM s) AS sub ORDER BY k, v', /sub-select in FROM/],
      ['CREATE VIEW bad AS SELECT DISTINCT ON (k) k, v FROM s ORDER BY k, v USING ~<~', /USING ~<~/],
      ['CREATE VIEW bad AS SELECT k, count(*) FROM s GROUP BY k ORDER BY k', /ORDER BY is not supported/],
      ['CREATE VIEW bad AS SELECT DISTINCT ON (k) k, v FROM s ORDER BY k, v LIMIT 1', /LIMIT/],
      ['SELECT combine(count) FROM rollup', /combine\(\) over "rollup"/],
      ["CREATE VIEW bad WITH (action = transform, outputfunc = pipeline_kafka.emit_upserts('t')) AS SELECT * FROM output_of('rollup')", /emit_upserts of "rollup"/],
      ['CREATE VIEW bad AS SELECT 1 AS one FROM s GROUP BY ()', /GROUP BY \(\) without aggregates/],
    ];
    for (const [sql, message] of refused) {
      const error = await failure(client.query(sql));
      expect({ sql, code: error.code }).toEqual({ sql, code: '0A000' });
      expect(error.message).toMatch(message);
      expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    }
    await client.query('CREATE STREAM timed (ts timestamptz, k text, v int)');
    const ttl = await failure(client.query("CREATE VIEW bad WITH (ttl = '1 day', ttl_column = 'day') AS SELECT date_trunc('day', ts) AS day, k, count(*) FROM timed GROUP BY ROLLUP (day, k)"));
    expect(ttl).toMatchObject({ code: '0A000', message: expect.stringMatching(/must be in every grouping set/) });
    // A TTL column in every grouping set is fine: the subtotals expire with their day.
    await client.query("CREATE VIEW daily WITH (ttl = '1 day', ttl_column = 'day') AS SELECT date_trunc('day', ts) AS day, k, count(*) FROM timed GROUP BY day, ROLLUP (k)");
    expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it("reports PostgreSQL's own errors for a wrong query", async () => {
    const cases = [
      ['SELECT k, v, count(*) FROM {src} GROUP BY ROLLUP (k)', '42803'],
      ['SELECT DISTINCT ON (k) k, v FROM {src} ORDER BY v', '42P10'],
      ['SELECT k, GROUPING(v) FROM {src} GROUP BY ROLLUP (k)', '42803'],
    ] as const;
    for (const [sql, code] of cases) {
      const expected = await failure(client.query(sql.replaceAll('{src}', 't')));
      expect(expected.code).toBe(code);
      const got = await failure(client.query(`CREATE VIEW bad AS ${sql.replaceAll('{src}', 's')}`));
      expect(got).toEqual({ ...expected, message: expected.message?.replaceAll('"t.', '"s.') });
    }
  });
});

describe('grouping sets in a sliding window', () => {
  it('merge the buckets still in the window per grouping set, equal to the batch query at several instants', async () => {
    const sluice = await startSluice();
    const client = await sluice.client();
    await client.query('CREATE STREAM orders (region text, user_id int, amount numeric, ts timestamptz)');
    await client.query('CREATE TABLE orders_t (region text, user_id int, amount numeric, ts timestamptz)');
    await client.query(`CREATE VIEW by_region WITH (sw = '1 hour', sw_column = 'ts') AS
      SELECT region, user_id, count(*), sum(amount), max(amount), GROUPING(region, user_id) AS gr FROM orders GROUP BY ROLLUP (region, user_id) HAVING count(*) > 1`);
    await client.query("CREATE VIEW by_region_changes AS SELECT (new).gr, count(*) AS n FROM output_of('by_region') GROUP BY 1");
    const r = rng(5);
    for (let batch = 0; batch < 5; batch++) {
      const rows = Array.from({ length: 150 }, () => {
        const region = r() < 0.1 ? 'NULL' : `'r${Math.floor(r() * 3)}'`;
        const user = r() < 0.1 ? 'NULL' : String(Math.floor(r() * 6));
        return `(${region}, ${user}, ${(r() * 100).toFixed(2)}, now() - interval '${Math.floor(r() * 100)} minutes ${Math.floor(r() * 60)} seconds')`;
      });
      await client.query(`INSERT INTO orders_t VALUES ${rows.join(', ')}`);
    }
    const all = (await client.query({ text: 'SELECT region, user_id, amount, ts FROM orders_t', rowMode: 'array', types: asText })).rows as Row[];
    for (let i = 0; i < all.length; i += 100) {
      await client.query(`INSERT INTO orders VALUES ${valuesSql(all.slice(i, i + 100))}`);
    }
    for (const ahead of ['0 minutes', '25 minutes', '50 minutes']) {
      const instant = (await client.query(`SELECT (now() + interval '${ahead}')::text AS t`)).rows[0].t as string;
      await client.query(`SET sluice.now = '${instant}'`);
      const oracle = await sortedRows(
        client,
        `SELECT region, user_id, count(*), sum(amount), max(amount), GROUPING(region, user_id) AS gr FROM orders_t
         WHERE date_bin('3 minutes', ts, timestamptz '2000-01-01 00:00:00+00') + interval '3 minutes' > '${instant}'::timestamptz - interval '1 hour'
         GROUP BY ROLLUP (region, user_id) HAVING count(*) > 1`,
      );
      expect(oracle.rows.length).toBeGreaterThan(1);
      expect(await sortedRows(client, 'SELECT * FROM by_region')).toEqual(oracle);
    }
    await client.query('RESET sluice.now');
    // Changes went down the output stream for every level of the rollup.
    expect((await client.query('SELECT gr FROM by_region_changes ORDER BY gr')).rows).toEqual([{ gr: 0 }, { gr: 1 }, { gr: 3 }]);
    await sluice.stop({ removeData: true });
  }, 120_000);
});

describe('grouping sets and DISTINCT ON beyond a single server run', () => {
  it('keep counting after a restart, and their output streams carry each change', async () => {
    const dataDir = tempDataDir();
    let sluice = await startSluice({ dataDir });
    let client = await sluice.client();
    await client.query(`CREATE FOREIGN TABLE s (${columns}) SERVER pipelinedb`);
    await client.query(`CREATE TABLE t (${columns})`);
    const kept = ['cube', 'duplicate_sets', 'plain_distinct', 'distinct_on_two_keys', 'distinct_on_without_order'];
    for (const name of kept) await client.query(`CREATE VIEW ${name} AS ${views[name].replaceAll('{src}', 's')}`);
    // Each change of the latest row per key, and each new subtotal, as their output streams carry them.
    await client.query(`CREATE VIEW latest_changes AS SELECT old IS NULL AS first, (old).n AS old_n, (old).h AS old_h, (new).n AS new_n, (new).h AS new_h
      FROM output_of('distinct_on_two_keys')`);
    await client.query("CREATE VIEW cube_changes AS SELECT (new).k, (new).g, (new).h, count(*) AS changes, max((new).count) AS last FROM output_of('cube') GROUP BY 1, 2, 3");
    const total = await feed(client, 7, 0, 1500);
    await sluice.stop();

    sluice = await startSluice({ dataDir });
    client = await sluice.client();
    await feed(client, 8, total, 1500);
    for (const name of kept) {
      const oracle = await sortedRows(client, (oracles[name] ?? views[name]).replaceAll('{src}', 't'));
      expect((await sortedRows(client, `SELECT * FROM ${name}`)).rows).toEqual(oracle.rows);
    }
    // A key's first row arrives with old = NULL; every later change replaced the kept row by one that
    // comes strictly before it (ORDER BY n NULLS FIRST, h DESC NULLS LAST).
    const check = await client.query(`SELECT count(*) FILTER (WHERE first)::int AS firsts, count(*) FILTER (WHERE NOT first)::int AS replaced,
      count(*) FILTER (WHERE NOT first AND NOT coalesce((new_n IS NULL AND old_n IS NOT NULL) OR new_n < old_n
        OR (new_n IS NOT DISTINCT FROM old_n AND ((new_h IS NOT NULL AND old_h IS NULL) OR new_h > old_h)), false))::int AS wrong
      FROM latest_changes`);
    const keys = Number((await client.query('SELECT count(*) FROM distinct_on_two_keys')).rows[0].count);
    expect(check.rows[0]).toEqual({ firsts: keys, replaced: expect.any(Number), wrong: 0 });
    expect(check.rows[0].replaced).toBeGreaterThan(0);
    // The latest change of every cube row is its current count.
    const last = await sortedRows(client, 'SELECT k, g, h, last FROM cube_changes');
    const current = await sortedRows(client, 'SELECT k, g, h, count FROM cube WHERE k IS NOT NULL AND g IS NOT NULL AND h IS NOT NULL');
    expect(last.rows.filter(([k, g, h]) => k !== null && g !== null && h !== null)).toEqual(current.rows);
    await sluice.stop({ removeData: true });
  }, 180_000);
});
