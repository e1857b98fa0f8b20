import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { copyInto, createStreamTableAndViews, type TextRow, valuesSql } from '../support/rows.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * User-defined aggregates with a combine function, as PipelineDB allowed
 * them, and PostgreSQL's own aggregates Sluice has no special code for but
 * which have one (bit_xor): each view must equal the same query over a table
 * holding the same rows, sent in random batches by INSERT and COPY.
 */

const udfs = [
  // Geometric mean: state {Σ ln x, n}, strict transition and combine, a final function.
  `CREATE FUNCTION gm_step(s float8[], x float8) RETURNS float8[] LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT ARRAY[s[1] + ln(x), s[2] + 1] $$`,
  `CREATE FUNCTION gm_combine(a float8[], b float8[]) RETURNS float8[] LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT ARRAY[a[1] + b[1], a[2] + b[2]] $$`,
  `CREATE FUNCTION gm_final(s float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN s[2] = 0 THEN NULL ELSE round(exp(s[1] / s[2])::numeric, 6)::float8 END $$`,
  `CREATE AGGREGATE geomean(float8) (SFUNC = gm_step, STYPE = float8[], COMBINEFUNC = gm_combine, FINALFUNC = gm_final, INITCOND = '{0,0}')`,
  // Two per-row arguments; no initial state, so a strict transition function starts from the first value (x * w: not binary-coercible, hence the non-strict form).
  `CREATE FUNCTION ws_step(s numeric, x numeric, w numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN x IS NULL OR w IS NULL THEN s ELSE coalesce(s, 0) + x * w END $$`,
  `CREATE FUNCTION ws_combine(a numeric, b numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE a + b END $$`,
  `CREATE AGGREGATE weighted_sum(numeric, numeric) (SFUNC = ws_step, STYPE = numeric, COMBINEFUNC = ws_combine)`,
  // Polymorphic, strict, no final function: the longest text (any type with a length).
  `CREATE FUNCTION longest_step(a anyelement, b anyelement) RETURNS anyelement LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT CASE WHEN length(b::text) > length(a::text) THEN b ELSE a END $$`,
  `CREATE AGGREGATE longest(anyelement) (SFUNC = longest_step, STYPE = anyelement, COMBINEFUNC = longest_step)`,
  // No combine function: cannot be kept incrementally.
  `CREATE AGGREGATE no_combine(float8) (SFUNC = float8pl, STYPE = float8)`,
];

const views: Record<string, string> = {
  geo: 'SELECT k, geomean(x) AS gm, count(*) FROM {src} WHERE x > 0 GROUP BY k',
  weighted: 'SELECT k, weighted_sum(n, w) AS ws, weighted_sum(n, w) FILTER (WHERE w > 2) AS big FROM {src} GROUP BY k',
  longest: 'SELECT g, longest(t) AS lt FROM {src} GROUP BY g',
  builtin_bit_xor: 'SELECT k, bit_xor(g) AS bx, count(*) FROM {src} GROUP BY k',
  ungrouped: 'SELECT geomean(x) FILTER (WHERE x > 0) AS gm, weighted_sum(n, w) AS ws, longest(t) AS lt FROM {src}',
};

const columns = 'k text, g int, x float8, n numeric, w numeric, t text';
const columnNames = 'k, g, x, n, w, t';

function randomRows(random: () => number, count: number): TextRow[] {
  const maybe = (v: string): string | null => (random() < 0.1 ? null : v);
  return Array.from({ length: count }, () => [
    maybe(`k${Math.floor(random() * 4)}`),
    maybe(String(Math.floor(random() * 2000) - 1000)),
    maybe(String(Math.round((random() * 100 - 10) * 1000) / 1000)),
    maybe(String(Math.round(random() * 1e6) / 100)),
    maybe(String(Math.floor(random() * 5))),
    maybe('x'.repeat(Math.floor(random() * 30))),
  ]);
}

let sluice: RunningSluice;
let client: pg.Client;

beforeAll(async () => {
  sluice = await startSluice();
  client = await sluice.client();
  for (const sql of udfs) await client.query(sql);
  await createStreamTableAndViews(client, columns, views);
  const random = rng(2026);
  for (let sent = 0; sent < 1500; ) {
    const rows = randomRows(random, 1 + Math.floor(random() * 200));
    sent += rows.length;
    if (random() < 0.5) {
      await client.query(`INSERT INTO s (${columnNames}) VALUES ${valuesSql(rows)}`);
    } else {
      await copyInto(client, 's', columnNames, rows);
    }
    await client.query(`INSERT INTO t (${columnNames}) VALUES ${valuesSql(rows)}`);
  }
}, 60_000);

afterAll(async () => {
  await sluice?.stop({ removeData: true });
});

describe('user-defined aggregates with a combine function', () => {
  for (const [name, sql] of Object.entries(views)) {
    it(`${name}: the view equals PostgreSQL's GROUP BY over the same rows`, async () => {
      const got = await client.query({ text: `SELECT * FROM ${name} ORDER BY 1`, rowMode: 'array' });
      const want = await client.query({ text: `${sql.replaceAll('{src}', 't')} ORDER BY 1`, rowMode: 'array' });
      expect(got.rows).toEqual(want.rows);
      expect(got.rows.length).toBeGreaterThan(0);
      expect(got.fields.map((f) => f.dataTypeID)).toEqual(want.fields.map((f) => f.dataTypeID));
    });
  }

  it('combine() merges the groups with the combine function', async () => {
    const got = await client.query('SELECT combine(gm) AS gm, combine(count) AS n FROM geo');
    const want = await client.query('SELECT geomean(x) AS gm, count(*) AS n FROM t WHERE x > 0');
    expect(got.rows).toEqual(want.rows);
  });

  it('refuses an aggregate without a combine function, saying why (0A000)', async () => {
    await expect(client.query('CREATE VIEW nc AS SELECT k, no_combine(x) FROM s GROUP BY k')).rejects.toMatchObject({
      code: '0A000',
      message: expect.stringContaining('no_combine(double precision) cannot be used in a continuous view: it has no combine function'),
    });
  });

  it('keeps the view working across a restart', async () => {
    const dataDir = sluice.dataDir;
    const before = (await client.query('SELECT * FROM geo ORDER BY k')).rows;
    await sluice.stop();
    sluice = await startSluice({ dataDir });
    client = await sluice.client();
    await client.query(`INSERT INTO s (k, x) VALUES ('k1', 2), ('k1', 8)`);
    await client.query(`INSERT INTO t (k, x) VALUES ('k1', 2), ('k1', 8)`);
    expect((await client.query('SELECT * FROM geo ORDER BY k')).rows).not.toEqual(before);
    expect((await client.query('SELECT * FROM geo ORDER BY k')).rows).toEqual((await client.query(`${views.geo.replaceAll('{src}', 't')} ORDER BY k`)).rows);
  });
});
