import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * COPY options into a stream, each case run against a plain table too: the
 * rows the view keeps, or the error (SQLSTATE and message), must be the table's.
 */
let sluice: RunningSluice;
let client: pg.Client;

beforeAll(async () => {
  sluice = await startSluice();
  client = await sluice.client();
});
afterAll(() => sluice?.stop({ removeData: true }));

async function copy(table: string, options: string, data: string): Promise<{ notices: string[]; error?: { code?: string; message: string } }> {
  const notices: string[] = [];
  const onNotice = (n: { message?: string }) => notices.push(n.message ?? '');
  client.on('notice', onNotice);
  try {
    await pipeline(Readable.from([Buffer.from(data)]), client.query(copyFrom(`COPY ${table} (a, b) FROM STDIN WITH (${options})`)));
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { notices, error: { code: e.code, message: e.message } };
  } finally {
    // A notice may trail the command by a tick.
    await new Promise((r) => setImmediate(r));
    client.off('notice', onNotice);
  }
  return { notices };
}

const cases: [string, string][] = [
  ['FORMAT csv, HEADER true', 'a,b\n1,x\n'],
  ['FORMAT csv, HEADER', 'a,b\n2,y\n'],
  ['FORMAT csv, HEADER MATCH', 'a,b\n3,z\n'],
  ['FORMAT csv, HEADER MATCH', 'b,a\n4,w\n'],
  ['FORMAT csv, HEADER MATCH', 'a\n5,v\n'],
  ['FORMAT text, HEADER on', 'a\tb\n6\tu\n'],
  ['FORMAT text, HEADER match', 'a\tb\n7\tt\n'],
  ["FORMAT csv, DELIMITER '|', NULL 'nil'", '8|nil\n9|"nil"\n'],
  ["FORMAT csv, QUOTE '''', ESCAPE '\\'", "10,'it\\'s'\n"],
  ['FORMAT csv, FORCE_NULL (b)', '11,""\n'],
  ['FORMAT csv, FORCE_NOT_NULL (b)', '12,\n'],
  ["FORMAT text, ENCODING 'UTF8'", '13\tcafé\n'],
  ["FORMAT text, DELIMITER ','", '14,s\n'],
  ['FORMAT csv, ON_ERROR ignore', '15,a\nx,b\n16,c\n99999999999,d\n'],
  ['FORMAT text, ON_ERROR ignore', '17\te\n1.5\tf\n'],
  ['FORMAT csv, ON_ERROR ignore, LOG_VERBOSITY silent', 'y,g\n18,h\n'],
  ['FORMAT csv, ON_ERROR stop', 'z,i\n'],
  ['FORMAT csv, ON_ERROR ignore', '19\n'],
];

describe('COPY options into a stream', () => {
  it.each(cases.map(([options, data], i) => [i, options, data]))('case %i: COPY … WITH (%s) is what a table gets', async (i, options, data) => {
    await client.query(`CREATE STREAM c${i} (a int, b text)`);
    await client.query(`CREATE VIEW c${i}_v AS SELECT a, b FROM c${i}`);
    await client.query(`CREATE TABLE c${i}_t (a int, b text)`);
    const intoStream = await copy(`c${i}`, options as string, data as string);
    const intoTable = await copy(`c${i}_t`, options as string, data as string);
    expect(intoStream.error?.code).toBe(intoTable.error?.code);
    // The table's error names the table, the stream's the stream: compare past the name.
    expect(intoStream.error?.message.replaceAll(`c${i}`, 'X')).toBe(intoTable.error?.message.replaceAll(`c${i}_t`, 'X'));
    const viewRows = (await client.query(`SELECT a, b FROM c${i}_v ORDER BY a`)).rows;
    const tableRows = (await client.query(`SELECT a, b FROM c${i}_t ORDER BY a`)).rows;
    expect(viewRows).toEqual(tableRows);
    expect(intoStream.notices).toEqual(intoTable.notices);
  });
});

describe('COPY … ON_ERROR ignore, LOG_VERBOSITY verbose', () => {
  it('names each skipped line, column and value as PostgreSQL does, whether the engine or the store refused it', async () => {
    await client.query('CREATE STREAM vb (a int, b inet)');
    await client.query('CREATE VIEW vb_v AS SELECT a, b FROM vb');
    await client.query('CREATE TABLE vb_t (a int, b inet)');
    const long = 'x'.repeat(150);
    const data = ['1,10.0.0.1', 'bad,10.0.0.2', '2,not-an-address', `${long},10.0.0.3`, '"quoted ""x""",10.0.0.4', '3,"10.0.0.5"', '2147483648,10.0.0.6', '4,300.1.1.1', ''].join('\n');
    const options = 'FORMAT csv, ON_ERROR ignore, LOG_VERBOSITY verbose';
    const intoStream = await copy('vb', options, data);
    const intoTable = await copy('vb_t', options, data);
    expect(intoTable.notices.length).toBe(7);
    expect(intoStream).toEqual(intoTable);
    expect((await client.query('SELECT a, b FROM vb_v ORDER BY a')).rows).toEqual((await client.query('SELECT a, b FROM vb_t ORDER BY a')).rows);
  });
});
