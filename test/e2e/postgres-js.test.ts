import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * postgres.js, the other Node driver people use: it prepares every query,
 * learns parameter types from Describe and encodes values by them — so an
 * INSERT into a stream must describe the stream's column types.
 */
let sluice: RunningSluice;
let sql: postgres.Sql;

beforeAll(async () => {
  sluice = await startSluice();
  sql = postgres({ host: '127.0.0.1', port: sluice.port, user: 'sluice', database: 'sluice', max: 2, onnotice: () => undefined });
});
afterAll(async () => {
  await sql?.end();
  await sluice?.stop({ removeData: true });
});

describe('postgres.js', () => {
  it('inserts JS values into a stream with parameters of the described types, and reads the view', async () => {
    await sql`CREATE STREAM pj (name text, n int8, x float8, at timestamptz, tags text[], doc jsonb, ok bool)`;
    await sql`CREATE VIEW pj_v AS SELECT name, count(*), sum(n) AS n, max(x) AS x, max(at) AS at, max(array_length(tags, 1)) AS tags, max(doc->>'k') AS k, bool_and(ok) AS ok FROM pj GROUP BY name`;
    const at = new Date('2026-12-04T10:30:00.123Z');
    for (let i = 0; i < 3; i++) {
      await sql`INSERT INTO pj VALUES (${'a'}, ${String(9007199254740993n + BigInt(i))}, ${0.5 + i}, ${at}, ${['x', 'y']}, ${sql.json({ k: `v${i}` })}, ${i < 5})`;
    }
    const rows = await sql`SELECT name, count::int, n::text, x, at, tags, k, ok FROM pj_v`;
    expect(rows.map((r) => ({ ...r }))).toEqual([{ name: 'a', count: 3, n: '27021597764222982', x: 2.5, at, tags: 2, k: 'v2', ok: true }]);
  });

  it('gets PostgreSQL\'s error for a value the column refuses, and the view is unchanged', async () => {
    await expect(sql`INSERT INTO pj (name, n) VALUES (${'b'}, ${'not a number'})`).rejects.toMatchObject({ code: '22P02' });
    expect(await sql`SELECT count(*)::int AS n FROM pj_v WHERE name = 'b'`).toEqual([{ n: 0 }]);
  });
});
