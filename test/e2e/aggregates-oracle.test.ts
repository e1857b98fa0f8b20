import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';
import { copyInto, createStreamTableAndViews, failure, valuesSql } from '../support/rows.ts';

/**
 * Every aggregate of a continuous view against PostgreSQL itself: the same
 * random rows go into a stream (in random batch sizes, by INSERT and COPY)
 * and into a plain table, and the view must equal `SELECT … GROUP BY` over
 * the table. Floating-point sums are compared with a relative tolerance,
 * since adding partial sums per batch may round differently in the last bit;
 * everything else must match exactly as text.
 */

const columns = 'k text, g int, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, id int8';
const columnNames = 'k, g, i2, i4, i8, f4, f8, n, id';
const views: Record<string, string> = {
  counts: 'SELECT k, count(*), count(i4) AS ci4, count(n) AS cn FROM {src} GROUP BY k',
  sums: 'SELECT k, sum(i2) AS si2, sum(i4) AS si4, sum(i8) AS si8, sum(f4) AS sf4, sum(f8) AS sf8, sum(n) AS sn FROM {src} GROUP BY k',
  avgs: 'SELECT k, avg(i2) AS ai2, avg(i4) AS ai4, avg(i8) AS ai8, avg(f4) AS af4, avg(f8) AS af8, avg(n) AS an FROM {src} GROUP BY k',
  extremes:
    'SELECT k, min(i2) AS a, max(i2) AS b, min(i4) AS c, max(i4) AS d, min(i8) AS e, max(i8) AS f, min(f4) AS g, max(f4) AS h, ' +
    'min(f8) AS i, max(f8) AS j, min(n) AS l, max(n) AS m, min(k) AS mink FROM {src} GROUP BY k',
  two_keys: 'SELECT k, g, count(*), sum(i4), avg(n) FROM {src} GROUP BY k, g',
  expression_keys: 'SELECT g % 3 AS bucket, upper(k) AS uk, count(*), sum(i8 * 2), max(abs(f8)), avg(i4::numeric / 7) FROM {src} GROUP BY 1, 2',
  filtered: "SELECT k, count(*), sum(n), min(f8) FROM {src} WHERE i4 > 0 AND k <> 'k3' GROUP BY k",
  ungrouped: 'SELECT count(*), sum(i4), avg(f8), max(n), min(i8) FROM {src}',
  case_coalesce: "SELECT CASE WHEN g > 5 THEN 'high' ELSE 'low' END AS band, count(*), sum(coalesce(i4, 0)), round(avg(f8)::numeric, 3) AS r FROM {src} GROUP BY 1",
  cast_and_length: 'SELECT length(k) AS len, count(*), sum(i2::int8), max(lower(k)) FROM {src} GROUP BY length(k)',
  booleans_and_bits:
    'SELECT k, bool_and(i4 > 0) AS ba, bool_or(i4 > 0) AS bo, every(g < 5) AS ev, bit_and(i4) AS bwa, bit_or(i2) AS bwo FROM {src} GROUP BY k',
  strings_and_arrays: "SELECT g, string_agg(k, ',') AS s_agg, array_agg(i2) AS a_agg, json_agg(i4) AS j_agg, jsonb_agg(n) AS jb_agg FROM {src} GROUP BY g",
  variances:
    'SELECT k, var_samp(f8) AS a, stddev(f8) AS b, var_pop(f4) AS c, stddev_pop(f8) AS d, variance(i4) AS e, stddev_samp(i2) AS f, var_pop(n) AS h, stddev(i8) AS i FROM {src} GROUP BY k',
  distinct_arrays: 'SELECT k, array_agg(DISTINCT g) AS dg, array_agg(DISTINCT i2 / 1000) AS di FROM {src} GROUP BY k',
  regressions:
    'SELECT k, corr(f8, i4) AS a, covar_pop(f8, i4) AS b, covar_samp(i2, f4) AS c, regr_avgx(f8, i2) AS d, regr_avgy(f8, i2) AS e, regr_count(n, i4) AS f, ' +
    'regr_intercept(i4, i2) AS g, regr_r2(i4, i2) AS h, regr_slope(i4, i2) AS i, regr_sxx(f8, i4) AS j, regr_sxy(f8, i4) AS l, regr_syy(f8, i4) AS m FROM {src} GROUP BY k',
  filtered_aggregates: "SELECT k, count(*) FILTER (WHERE i4 > 0) AS pos, sum(n) FILTER (WHERE g = 1) AS g1, avg(f8) FILTER (WHERE f8 < 0) AS neg FROM {src} GROUP BY k",
  with_having: 'SELECT k, count(*), sum(i2) FROM {src} GROUP BY k HAVING count(*) > 480 AND sum(i2) IS NOT NULL',
  expression_over_aggregates: 'SELECT k, sum(i4) - min(i4) AS spread, count(*) * 2 AS doubled, max(f8) / nullif(count(*), 0) AS ratio FROM {src} GROUP BY k',
  // A NULL key is an error (as in PostgreSQL), so the keys here never are.
  objects:
    'SELECT g, count(*), json_object_agg(k, i4) AS jo, jsonb_object_agg(k, f8) AS jbo, json_object_agg(i2 % 7, n) FILTER (WHERE i2 IS NOT NULL) AS jof, ' +
    'jsonb_object_agg(upper(k), i8) FILTER (WHERE i4 > 0) AS jbof FROM {src} WHERE k IS NOT NULL GROUP BY g',
  ungrouped_objects: 'SELECT count(*), count(k) AS ck, json_object_agg(id, f4) FILTER (WHERE id % 10 = 0) AS jo, jsonb_object_agg(coalesce(k, \'none\'), n) AS jbo FROM {src}',
  exact_distinct:
    'SELECT k, exact_count_distinct(g) AS a, exact_count_distinct(i2 / 100) AS b, exact_count_distinct(n) AS c, exact_count_distinct(f4) FILTER (WHERE g > 3) AS d, ' +
    'exact_count_distinct(lower(k)) AS e, exact_count_distinct(i8) AS f FROM {src} GROUP BY k',
  // Hypothetical-set aggregates: NULLs (rows and v) sort as ORDER BY sorts them, ties count per PostgreSQL, v is compared in the common type.
  hypothetical:
    "SELECT k, rank(0) WITHIN GROUP (ORDER BY i4) AS r, dense_rank(5) WITHIN GROUP (ORDER BY g) AS dr, percent_rank(0.5) WITHIN GROUP (ORDER BY f8) AS pr, " +
    "cume_dist('k5') WITHIN GROUP (ORDER BY k) AS cd, rank(100.5) WITHIN GROUP (ORDER BY n) AS rn, dense_rank(0.1) WITHIN GROUP (ORDER BY f4) AS drf FROM {src} GROUP BY k",
  hypothetical_orders:
    'SELECT g, rank(0) WITHIN GROUP (ORDER BY i4 DESC) AS a, dense_rank(3) WITHIN GROUP (ORDER BY g DESC) AS b, percent_rank(0) WITHIN GROUP (ORDER BY i2 NULLS FIRST) AS c, ' +
    'cume_dist(0) WITHIN GROUP (ORDER BY i4 DESC NULLS LAST) AS d, dense_rank(NULL) WITHIN GROUP (ORDER BY i2 / 1000) AS e, rank(NULL) WITHIN GROUP (ORDER BY k DESC) AS f, ' +
    "cume_dist(NULL) WITHIN GROUP (ORDER BY f4) AS h, dense_rank(0) WITHIN GROUP (ORDER BY i4 NULLS FIRST) AS i, percent_rank(0.1) WITHIN GROUP (ORDER BY f4 DESC) AS j, " +
    "dense_rank('k5') WITHIN GROUP (ORDER BY k DESC NULLS FIRST) AS l, rank(NULL) WITHIN GROUP (ORDER BY n NULLS FIRST) AS m FROM {src} GROUP BY g",
  hypothetical_filtered:
    'SELECT k, rank(2 * 2) WITHIN GROUP (ORDER BY g) FILTER (WHERE i4 > 0) AS a, dense_rank(0) WITHIN GROUP (ORDER BY i8 / 1000000) FILTER (WHERE g < 3) AS b, ' +
    "percent_rank(abs(-3)) WITHIN GROUP (ORDER BY g) FILTER (WHERE f8 > 1e5) AS c, cume_dist(1) WITHIN GROUP (ORDER BY g DESC) FILTER (WHERE k = 'none') AS d, " +
    'percent_rank(1) WITHIN GROUP (ORDER BY g) FILTER (WHERE g IS NULL) AS e FROM {src} WHERE g IS DISTINCT FROM 7 GROUP BY k',
  // Compiled: WHERE, keys, arguments and FILTERs the engine evaluates itself (see `engineEvaluated` below).
  compiled_where:
    "SELECT g % 4 AS b, k || '/' || (i2 > 0) AS kp, count(*), sum(i4 / 2) AS s, min(f8 * 2) AS mi, max(i8 - i4) AS mx, avg(abs(i2)) AS av FROM {src} " +
    "WHERE (i4 BETWEEN -1000000 AND 1000000 OR f8 > 0) AND k IS NOT NULL AND k LIKE 'k1%' GROUP BY 1, 2",
  compiled_filters:
    "SELECT coalesce(k, 'none') AS kk, count(*) FILTER (WHERE g IN (1, 2, 3)) AS c123, sum(i2) FILTER (WHERE i2 IS DISTINCT FROM 0 AND NOT (g = 5)) AS s, " +
    "count(CASE WHEN f8 > 0 THEN 'pos' WHEN f8 < 0 THEN 'neg' END) AS signed, min(greatest(i4, g)) AS gi, sum(nullif(g, 4)) AS sn, count(length(k)) FILTER (WHERE k ~ '^k[0-5]$') AS kc FROM {src} GROUP BY 1",
  hypothetical_ungrouped:
    'SELECT count(*), rank(0) WITHIN GROUP (ORDER BY i4) AS a, dense_rank(500000.5) WITHIN GROUP (ORDER BY n) AS b, percent_rank(-1000) WITHIN GROUP (ORDER BY i8 DESC) AS c, ' +
    'cume_dist(0) WITHIN GROUP (ORDER BY f8 NULLS FIRST) AS d FROM {src}',
  // Several sort columns, each in its own order (PipelineDB's rank(7, 47, '47') WITHIN GROUP (ORDER BY x, y, z)).
  hypothetical_several_columns:
    "SELECT k, rank(3, 0, 'k1') WITHIN GROUP (ORDER BY g, i4, k) AS a, dense_rank(3, 0) WITHIN GROUP (ORDER BY g DESC, i4 / 100000) AS b, " +
      "percent_rank(NULL, 5) WITHIN GROUP (ORDER BY g NULLS FIRST, i2 DESC) AS c, cume_dist(2, 0.5, NULL) WITHIN GROUP (ORDER BY g, f8 DESC NULLS LAST, n) AS d FROM {src} GROUP BY k",
};

/**
 * PostgreSQL's own spelling of a view's query where it differs: keys kept in
 * arrival order (id numbers the rows as they arrive), and exact_count_distinct
 * is count(DISTINCT …).
 */
const oracles: Record<string, string> = {
  objects:
    'SELECT g, count(*), json_object_agg(k, i4 ORDER BY id) AS jo, jsonb_object_agg(k, f8 ORDER BY id) AS jbo, json_object_agg(i2 % 7, n ORDER BY id) FILTER (WHERE i2 IS NOT NULL) AS jof, ' +
    'jsonb_object_agg(upper(k), i8 ORDER BY id) FILTER (WHERE i4 > 0) AS jbof FROM {src} WHERE k IS NOT NULL GROUP BY g',
  ungrouped_objects: 'SELECT count(*), count(k) AS ck, json_object_agg(id, f4 ORDER BY id) FILTER (WHERE id % 10 = 0) AS jo, jsonb_object_agg(coalesce(k, \'none\'), n ORDER BY id) AS jbo FROM {src}',
  exact_distinct:
    'SELECT k, count(DISTINCT g) AS a, count(DISTINCT i2 / 100) AS b, count(DISTINCT n) AS c, count(DISTINCT f4) FILTER (WHERE g > 3) AS d, ' +
    'count(DISTINCT lower(k)) AS e, count(DISTINCT i8) AS f FROM {src} GROUP BY k',
};

type Row = (string | null)[];

function randomRow(rand: () => number, id: number): Row {
  const maybe = (text: string): string | null => (rand() < 0.1 ? null : text);
  const int = (max: number) => Math.floor((rand() * 2 - 1) * max);
  const pick = <T,>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  return [
    maybe(`k${Math.floor(rand() * 12)}`),
    maybe(String(Math.floor(rand() * 10))),
    maybe(String(int(32767))),
    maybe(String(pick([int(2147483647), int(1000), 0]))),
    maybe(String(pick([BigInt(int(2 ** 30)) * 4294967296n, BigInt(int(100000))]))),
    maybe(pick([String(Math.fround(rand() * 1000)), '0.1', '-3.5e10', '1e-20'])),
    maybe(pick([String((rand() - 0.5) * 1e6), '1e-300', '-2.5e100', '0', String(rand())])),
    maybe(pick([(rand() * 1e6).toFixed(Math.floor(rand() * 6)), '-0.001', '123456789012345678901234567890.5', '0.000', String(int(1000))])),
    String(id),
  ];
}

/** string_agg/array_agg/json_agg order their elements as rows arrive; PostgreSQL's GROUP BY may not keep that order, so compare them as multisets. */
const unorderedColumns = new Set(['s_agg', 'a_agg', 'j_agg', 'jb_agg']);

function sortedElements(text: string): string {
  return text.replace(/^[[{]|[\]}]$/g, '').split(/,\s?/).sort().join(',');
}

function close(a: string | null, b: string | null, typeOid: number, column?: string): boolean {
  if (a === b) return true;
  if (column && unorderedColumns.has(column) && a !== null && b !== null) return sortedElements(a) === sortedElements(b);
  if (a === null || b === null) return false;
  const x = Number(a);
  const y = Number(b);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
  if (/^-?\d+$/.test(a) || /^-?\d+$/.test(b)) return false; // integers must be exact
  const tolerance = typeOid === 700 ? 1e-5 : 1e-12; // real carries ~7 significant digits
  return Math.abs(x - y) <= tolerance * Math.max(Math.abs(x), Math.abs(y));
}

describe('continuous views equal PostgreSQL over the same rows', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await createStreamTableAndViews(client, columns, views);
    const rand = rng(20261121);
    let total = 0;
    for (let batch = 0; total < 6000; batch++) {
      const size = 1 + Math.floor(rand() * (batch % 3 === 0 ? 1500 : 200));
      const rows = Array.from({ length: size }, (_, i) => randomRow(rand, total + i));
      total += size;
      if (batch % 2 === 0) {
        await client.query(`INSERT INTO s (${columnNames}) VALUES ${valuesSql(rows)}`);
      } else {
        await copyInto(client, 's', columnNames, rows);
      }
      await client.query(`INSERT INTO t (${columnNames}) VALUES ${valuesSql(rows)}`);
    }
  });
  afterAll(() => sluice.stop({ removeData: true }));

  for (const [name, viewSql] of Object.entries(views)) {
    const sql = oracles[name] ?? viewSql;
    it(name, async () => {
      const rowMode = 'array' as const;
      const textTypes = { getTypeParser: () => (v: string) => v };
      const viewRows = (await client.query({ text: `SELECT * FROM ${name} ORDER BY 1, 2`, rowMode, types: textTypes })).rows as Row[];
      const oracle = (await client.query({ text: `${sql.replace('{src}', 't')} ORDER BY 1, 2`, rowMode, types: textTypes })).rows as Row[];
      const viewFields = (await client.query(`SELECT * FROM ${name} LIMIT 0`)).fields.map((f) => [f.name, f.dataTypeID]);
      const oracleFields = (await client.query(`${sql.replace('{src}', 't')} LIMIT 0`)).fields.map((f) => [f.name, f.dataTypeID]);
      expect(viewFields).toEqual(oracleFields);
      expect(viewRows.length).toBe(oracle.length);
      for (let r = 0; r < oracle.length; r++) {
        for (let c = 0; c < oracle[r].length; c++) {
          if (!close(viewRows[r][c], oracle[r][c], viewFields[c][1] as number, viewFields[c][0] as string)) {
            expect({ row: r, column: viewFields[c][0], value: viewRows[r][c] }).toEqual({ row: r, column: viewFields[c][0], value: oracle[r][c] });
          }
        }
      }
    });
  }

  it('evaluates views of plain columns and compilable expressions in the engine, the others in the store', async () => {
    const engine = ['counts', 'sums', 'avgs', 'two_keys', 'filtered', 'compiled_where', 'compiled_filters'];
    for (const name of engine) expect([name, (await client.query(`SELECT sluice.view_evaluation('${name}') AS e`)).rows[0].e]).toEqual([name, 'engine']);
    // numeric division and round() of numeric are left to the store.
    expect((await client.query(`SELECT sluice.view_evaluation('expression_keys') AS e`)).rows[0].e).toBe('store');
  });

  it('a NULL key fails the INSERT into the stream with the error of PostgreSQL\'s GROUP BY', async () => {
    for (const fn of ['json_object_agg', 'jsonb_object_agg']) {
      const expected = await failure(client.query(`SELECT g, ${fn}(k, i4) FROM t GROUP BY g`));
      expect(expected.code).toMatch(/^22/);
      await client.query(`CREATE FOREIGN TABLE null_keys_${fn} (k text, v int) SERVER pipelinedb`);
      await client.query(`CREATE VIEW null_keys_${fn}_v AS SELECT v, ${fn}(k, v) AS o FROM null_keys_${fn} GROUP BY v`);
      await client.query(`INSERT INTO null_keys_${fn} VALUES ('a', 1)`);
      expect(await failure(client.query(`INSERT INTO null_keys_${fn} VALUES ('b', 1), (NULL, 1)`))).toEqual(expected);
      const rows = (await client.query(`SELECT o::text FROM null_keys_${fn}_v`)).rows;
      expect(rows).toEqual([{ o: fn === 'json_object_agg' ? '{ "a" : 1 }' : '{"a": 1}' }]);
    }
  });

  it('hypothetical-set aggregates refuse what they cannot rank exactly', async () => {
    for (const [sql, message] of [
      ['SELECT g, rank(g) WITHIN GROUP (ORDER BY i4) FROM s GROUP BY g', 'not a constant'],
      ['SELECT cume_dist(1) WITHIN GROUP (ORDER BY g USING >) FROM s', 'USING'],
    ]) {
      const error = await failure(client.query(`CREATE VIEW refused AS ${sql}`));
      expect(error.code).toBe('0A000');
      expect(error.message).toContain(message);
    }
  });

  it('exact_count_distinct of a type without equality fails as count(DISTINCT) does', async () => {
    const expected = await failure(client.query('SELECT count(DISTINCT k::json) FROM t'));
    expect(expected.code).toBe('42883');
    expect(await failure(client.query('CREATE VIEW distinct_json AS SELECT exact_count_distinct(k::json) FROM s'))).toEqual(expected);
  });
});

