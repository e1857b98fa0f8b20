/**
 * Rows the engine renders as JSON (transforms' Kafka messages) against
 * PostgreSQL's to_json of the same row, character for character: text with
 * escapes and non-ASCII, doubles with NaN, ±Infinity, -0 and exponents,
 * numerics of any scale, timestamps, booleans, integers and NULLs.
 */
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonObject, NeedsStore, parsers, type ExprType } from '../../engine/expressions/index.ts';
import { rng } from '../support/random.ts';

const columns: [string, string, ExprType][] = [
  ['i', 'int4', 'int4'],
  ['big', 'int8', 'int8'],
  ['f', 'float8', 'float8'],
  ['n', 'numeric', 'numeric'],
  ['b', 'bool', 'bool'],
  ['t', 'text', 'text'],
  ['ts', 'timestamptz', 'timestamptz'],
  ['tl', 'timestamp', 'timestamp'],
  ['weird "name"', 'text', 'text'],
];

const random = rng(8);
const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
const maybe = (v: string): string | null => (random() < 0.1 ? null : v);

function randomRow(): (string | null)[] {
  return [
    maybe(pick(['0', '-1', '2147483647', String(Math.floor(random() * 1e6))])),
    maybe(pick(['-9223372036854775808', '42', String(Math.floor(random() * 1e15))])),
    maybe(pick(['0', '-0', 'NaN', 'Infinity', '-Infinity', '1e21', '1e-7', '123.456', '4.2711105220951136e+16', String(random() * 1e9 - 5e8)])),
    maybe(pick(['0', '1.50', '-0.001', 'NaN', 'Infinity', '123456789012345678901234567890.5', String(Math.round(random() * 1e6) / 1000)])),
    maybe(pick(['t', 'f'])),
    maybe(pick(['', 'plain', 'quote " and \\ backslash', 'tab\tnew\nline\rcr', 'bell \u0007 and \u001f', 'é ☃ 𝄞', '\u007f del', '/slash/', '{"json": [1]}'])),
    maybe(pick(['2026-01-05T10:11:12Z', '2026-03-01 12:00:00.5+01', '1999-12-31T23:59:59.123456-08:00', '0099-06-15T00:00:00Z'])),
    maybe(pick(['2026-01-05 10:11:12', '2024-02-29 23:59:59.999999', '1900-01-01 00:00:00'])),
    maybe(pick(['x', 'y'])),
  ];
}

let db: PGlite;

beforeAll(async () => {
  db = await PGlite.create();
  await db.exec('SET TimeZone = UTC');
});

afterAll(async () => {
  await db?.close();
});

describe('rows as JSON', () => {
  it("renders 500 random rows exactly as PostgreSQL's to_json(row)", async () => {
    const rows = Array.from({ length: 500 }, randomRow);
    const list = columns.map(([name, type], i) => `$${i + 1}::${type} AS "${name.replace(/"/g, '""')}"`).join(', ');
    for (const row of rows) {
      const want = (await db.query<{ j: string }>(`SELECT to_json(r)::text AS j FROM (SELECT ${list}) AS r`, row)).rows[0].j;
      let values;
      try {
        values = row.map((text, i) => (text === null ? null : parsers[columns[i][2]](text)));
      } catch (err) {
        // Years far from 1970 are the store's to render.
        if (err instanceof NeedsStore) continue;
        throw err;
      }
      const got = jsonObject(
        columns.map(([name]) => name),
        columns.map(([, , type]) => type),
        values,
      );
      expect({ row, json: got }).toEqual({ row, json: want });
    }
  });
});
