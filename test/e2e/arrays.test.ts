import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * Stream columns of array types, written every way a client writes them;
 * what the views keep is compared with the same rows in a plain table.
 */
const columns = 'k text, i2 int2[], i4 int4[], i8 int8[], f8 float8[], num numeric[], b bool[], t text[], ts timestamptz[]';
const names = 'k, i2, i4, i8, f8, num, b, t, ts';
let sluice: RunningSluice;
let client: pg.Client;

beforeAll(async () => {
  sluice = await startSluice();
  client = await sluice.client();
  await client.query(`CREATE STREAM arr (${columns})`);
  await client.query(`CREATE TABLE arr_oracle (${columns})`);
  await client.query(`CREATE VIEW arr_rows AS SELECT ${names} FROM arr`);
  await client.query('CREATE VIEW arr_groups AS SELECT k, count(*), array_agg(i4) AS i4s, sum(array_length(f8, 1)) AS f8_items FROM arr GROUP BY k');
});
afterAll(() => sluice?.stop({ removeData: true }));

async function both(sql: (table: string) => string): Promise<void> {
  await client.query(sql('arr'));
  await client.query(sql('arr_oracle'));
}

async function copyBoth(text: string, options = ''): Promise<void> {
  for (const table of ['arr', 'arr_oracle']) {
    await pipeline(Readable.from([Buffer.from(text)]), client.query(copyFrom(`COPY ${table} (${names}) FROM STDIN ${options}`)));
  }
}

describe('array columns in streams', () => {
  it('take literals, ARRAY[…], INSERT … SELECT, prepared parameters and COPY (text and CSV), as a table does', async () => {
    await both((t) => `INSERT INTO ${t} VALUES ('lit', '{1,-2}', '{3,NULL}', '{9223372036854775807}', '{1.5,NaN}', '{1.10,2}', '{t,f}', '{"a b","c,d","e\\"f"}', '{"2026-01-01 00:00:00+00"}')`);
    await both((t) => `INSERT INTO ${t} VALUES ('ctor', ARRAY[1::int2], ARRAY[4, 5], ARRAY[6::int8], ARRAY[2.5::float8], ARRAY[3.25], ARRAY[true], ARRAY['x', NULL], ARRAY[now()])`);
    await both((t) => `INSERT INTO ${t} (k, i4, t) SELECT 'sel', ARRAY[g, g * 10], ARRAY['n' || g] FROM generate_series(1, 3) g`);
    for (const t of ['arr', 'arr_oracle']) await client.query(`INSERT INTO ${t} (k, i4, num) VALUES ($1, $2, $3)`, ['param', [7, 8], ['1.5', '-2']]);
    await copyBoth('copy\t{1}\t{2,3}\t{4}\t{5.5}\t{6}\t{f}\t{"tab\\\\tbed",plain}\t\\N\n');
    await copyBoth('csv,"{1,2}","{3}",,"{1e3}","{7.0}","{t}","{""q"",r}",\n', "WITH (FORMAT csv)");
    const order = `ORDER BY k, i4::text, t::text`;
    const rows = (await client.query(`SELECT ${names.replace('ts', 'ts IS NOT NULL AS ts')} FROM arr_rows ${order}`)).rows;
    const oracle = (await client.query(`SELECT ${names.replace('ts', 'ts IS NOT NULL AS ts')} FROM arr_oracle ${order}`)).rows;
    expect(rows).toHaveLength(8);
    expect(rows).toEqual(oracle);
    expect((await client.query("SELECT count::int, i4s::text, f8_items::int FROM arr_groups WHERE k = 'lit'")).rows).toEqual([{ count: 1, i4s: '{{3,NULL}}', f8_items: 2 }]);
  });

  it('refuse a malformed array with PostgreSQL\'s error, and change no view', async () => {
    const before = (await client.query('SELECT count(*)::int AS n FROM arr_rows')).rows[0].n;
    await expect(client.query("INSERT INTO arr (k, i4) VALUES ('bad', '{1,x}')")).rejects.toMatchObject({ code: '22P02', message: 'invalid input syntax for type integer: "x"' });
    await expect(client.query("INSERT INTO arr (k, i4) VALUES ('bad', '{1,2')")).rejects.toMatchObject({ code: '22P02', message: 'malformed array literal: "{1,2"' });
    expect((await client.query('SELECT count(*)::int AS n FROM arr_rows')).rows[0].n).toBe(before);
  });
});
