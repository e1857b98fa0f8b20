/**
 * COPY text/csv decoding, checked against PostgreSQL itself (PGlite): every
 * input goes through PGlite's COPY FROM and through our decoder (whole, split
 * at every byte offset, and in 1-byte chunks), and the rows or the error
 * (SQLSTATE, message, hint, context) must be the same.
 */
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlError } from '../../engine/errors.ts';
import {
  CopyDecoder,
  CopyFormatError,
  CopyLineDecoder,
  compileCopyOptions,
  decodeAll,
  decodeLine,
  type CopyFormatOptions,
  type CopyRow,
} from '../../engine/formats/index.ts';

type Outcome = { rows: CopyRow[] } | { error: { code: string; message: string; hint?: string; where?: string } };

let db: PGlite;

beforeAll(async () => {
  db = await PGlite.create();
}, 60_000);

afterAll(async () => {
  await db?.close();
});

const lit = (s: string): string => `'${s.replaceAll("'", "''")}'`;
const ident = (s: string): string => `"${s.replaceAll('"', '""')}"`;

function names(ncols: number, opts: Partial<CopyFormatOptions>): readonly string[] {
  return opts.columnNames ?? Array.from({ length: ncols }, (_, i) => `c${i + 1}`);
}

function withClause(opts: Partial<CopyFormatOptions>, cols: readonly string[]): string {
  const o: string[] = [`FORMAT ${opts.format ?? 'text'}`];
  if (opts.delimiter !== undefined) o.push(`DELIMITER ${lit(opts.delimiter)}`);
  if (opts.null !== undefined) o.push(`NULL ${lit(opts.null)}`);
  if (opts.quote !== undefined) o.push(`QUOTE ${lit(opts.quote)}`);
  if (opts.escape !== undefined) o.push(`ESCAPE ${lit(opts.escape)}`);
  if (opts.header !== undefined) o.push(`HEADER ${opts.header === 'match' ? 'MATCH' : String(opts.header)}`);
  const pick = (flags: readonly boolean[]) => cols.filter((_, i) => flags[i]).map(ident).join(', ');
  if (opts.forceNull?.some(Boolean)) o.push(`FORCE_NULL (${pick(opts.forceNull)})`);
  if (opts.forceNotNull?.some(Boolean)) o.push(`FORCE_NOT_NULL (${pick(opts.forceNotNull)})`);
  return `WITH (${o.join(', ')})`;
}

/** What PostgreSQL makes of these bytes. Values are read back as hex (PGlite's readback drops a leading BOM). */
async function oracle(ncols: number, data: Uint8Array, opts: Partial<CopyFormatOptions>): Promise<Outcome> {
  const cols = names(ncols, opts);
  await db.exec(`DROP TABLE IF EXISTS t; CREATE TABLE t (${cols.map((c) => `${ident(c)} text`).join(', ')})`);
  try {
    await db.query(`COPY t FROM '/dev/blob' ${withClause(opts, cols)}`, [], { blob: new Blob([new Uint8Array(data)]) });
  } catch (e) {
    const err = e as { code: string; message: string; hint?: string; where?: string };
    return { error: { code: err.code, message: err.message, hint: err.hint, where: err.where } };
  }
  const select = cols.length === 0 ? '1' : cols.map((c) => `encode(convert_to(${ident(c)}, 'UTF8'), 'hex')`).join(', ');
  const r = await db.query<unknown[]>(`SELECT ${select} FROM t ORDER BY ctid`, [], { rowMode: 'array' });
  return {
    rows: r.rows.map((row) =>
      cols.length === 0 ? [] : row.map((v) => (v === null ? null : Buffer.from(v as string, 'hex').toString('utf8'))),
    ),
  };
}

function errorOutcome(e: unknown): Outcome {
  if (!(e instanceof SqlError)) throw e;
  return { error: { code: e.code, message: e.message, hint: e.hint, where: e.detail } };
}

/** Our decoder fed with the given chunks. */
function ours(ncols: number, chunks: Uint8Array[], opts: Partial<CopyFormatOptions>): Outcome {
  const rows: CopyRow[] = [];
  try {
    const d = new CopyDecoder(ncols, { format: 'text', relationName: 't', columnNames: names(ncols, opts), ...opts }, (batch) => {
      expect(batch.length).toBeGreaterThan(0);
      for (const r of batch) rows.push(Array.from(r));
    });
    for (const c of chunks) d.push(c);
    d.end();
    expect(d.rowCount).toBe(rows.length);
    return { rows };
  } catch (e) {
    return errorOutcome(e);
  }
}

const toBytes = (d: string | number[] | Uint8Array): Uint8Array =>
  typeof d === 'string' ? Buffer.from(d, 'utf8') : d instanceof Uint8Array ? d : Uint8Array.from(d);

/** Checks the whole input, every 2-way split and 1-byte chunks against PostgreSQL. */
async function check(ncols: number, input: string | number[] | Uint8Array, opts: Partial<CopyFormatOptions> = {}): Promise<Outcome> {
  const data = toBytes(input);
  const expected = await oracle(ncols, data, opts);
  const label = (how: string) => `${JSON.stringify(Buffer.from(data).toString('latin1'))} ${JSON.stringify(opts)} ${how}`;
  expect(ours(ncols, [data], opts), label('whole')).toEqual(expected);
  for (let k = 1; k < data.length; k++) {
    expect(ours(ncols, [data.subarray(0, k), data.subarray(k)], opts), label(`split at ${k}`)).toEqual(expected);
  }
  const bytes = Array.from(data, (_, i) => data.subarray(i, i + 1));
  expect(ours(ncols, bytes, opts), label('1-byte chunks')).toEqual(expected);
  return expected;
}

const rowsOf = (o: Outcome) => ('rows' in o ? o.rows : o.error);

describe('text format', () => {
  it('splits fields and lines', async () => {
    expect(rowsOf(await check(2, 'a\tb\nc\td\n'))).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    await check(2, 'a\tb\nc\td'); // final line without newline
    await check(3, '\t\t\n');
    await check(1, '');
    await check(2, 'url_1\t12\nurl_2\t13\n');
  });

  it('decodes backslash escapes', async () => {
    expect(rowsOf(await check(1, '\\b\\f\\n\\r\\t\\v\\\\\\a\\q\n'))).toEqual([['\b\f\n\r\t\v\\aq']]);
    await check(1, '\\101\\1234\\7\\08\\1\n'); // 1-3 octal digits
    await check(1, '\\x41\\x4g\\xg\\x\\x414\n'); // 1-2 hex digits
    await check(2, 'a\\\tb\tc\n'); // escaped delimiter
    await check(1, 'a\\\nb\n'); // escaped newline is data
    await check(1, 'a\\\rb\r'); // escaped carriage return is data
    await check(1, '\\é\\😀x\n'); // escaped multibyte characters stand for themselves
    await check(1, 'abc\\'); // backslash right before the end of data is dropped
    await check(2, 'a\t\\');
    await check(1, '\\N\\'); // ... and the NULL marker still matches
  });

  it('builds UTF-8 from escaped bytes and checks it', async () => {
    expect(rowsOf(await check(1, '\\xc3\\xa9\\303\\251\\xe2\\x82\\xac\n'))).toEqual([['éé€']]);
    await check(1, '\\xc3\n');
    await check(1, '\\xc3x\n');
    await check(1, 'é\\xa9\n');
    await check(1, '\\xed\\xa0\\x80\n'); // surrogate
    await check(1, '\\0\n'); // NUL
    await check(1, 'ok\\x00\n');
    await check(2, '\\xff\tb\tc\n'); // the encoding error comes before "extra data"
    await check(1, '\\xff\n', { null: '\\xff' }); // the NULL marker is compared before de-escaping
  });

  it('recognises the NULL marker on the raw field', async () => {
    expect(rowsOf(await check(3, '\\N\t\\\\N\tN\n'))).toEqual([[null, '\\N', 'N']]);
    await check(2, '\\N\\N\t\n');
    await check(2, 'NUL|b\n', { delimiter: '|', null: 'NUL' });
    await check(2, '\tb\n', { null: '' });
    await check(2, 'nullé\tnull\n', { null: 'nullé' });
  });

  it('supports other delimiters', async () => {
    await check(2, 'a|b\n', { delimiter: '|' });
    await check(2, 'a\\|b|c\n', { delimiter: '|' });
    await check(2, 'a,b\n', { delimiter: ',' });
    // hex escapes swallow a delimiter that is a hex digit, as in PostgreSQL
    await check(2, '\\x4A1\n', { delimiter: 'A' });
    await check(2, '\\1A1\n', { delimiter: 'A' });
  });

  it('accepts \\n, \\r\\n and \\r line endings, detected from the first line', async () => {
    await check(2, 'a\tb\r\nc\td\r\n');
    await check(2, 'a\tb\rc\td\r');
    await check(1, '\r');
    await check(1, 'a\r');
    await check(1, '\n\n');
    await check(1, 'x\n\n'); // empty line in a 1-column table: empty string
  });

  it('rejects mixed line endings', async () => {
    const e = rowsOf(await check(2, 'a\tb\r\nc\td\n'));
    expect(e).toMatchObject({ code: '22P04', message: 'literal newline found in data', where: 'COPY t, line 2' });
    await check(2, 'a\tb\nc\td\r\n');
    await check(2, 'a\tb\rc\td\n');
    await check(1, 'a\r\nb\r');
    await check(1, 'a\nb\r');
    await check(1, 'a\\\r\nb\r\n');
  });

  it('stops at the end-of-data marker', async () => {
    expect(rowsOf(await check(1, 'a\n\\.\nmore\n'))).toEqual([['a']]);
    await check(1, '\\.\n');
    await check(1, '\\.\r\n');
    await check(1, 'a\r\\.\r');
    await check(1, 'a\r\n\\.\r\nignored\n');
    await check(1, 'a\n\\.\n\xff'); // invalid bytes after the marker are never read
    await check(1, 'a\\\\.b\n'); // an escaped backslash followed by a dot is data
  });

  it('rejects a misplaced end-of-data marker', async () => {
    await check(1, 'a\n\\.'); // at the end of data without newline
    await check(1, '\\.');
    await check(1, 'a\n\\.x\n');
    await check(1, 'a\nb\\.\n');
    await check(1, 'a\\.b\n');
    await check(1, 'a\r\n\\.\n');
    await check(1, 'a\r\n\\.\r');
    await check(1, 'a\r\n\\.');
    await check(1, 'a\r\\.\n');
    await check(1, 'a\n\\.\r\n');
    await check(1, 'x\nb\\.\r');
  });

  it('reports extra and missing columns with the line', async () => {
    const extra = rowsOf(await check(2, 'x\ty\na\tb\tc\n'));
    expect(extra).toEqual({
      code: '22P04',
      message: 'extra data after last expected column',
      hint: undefined,
      where: 'COPY t, line 2: "a\tb\tc"',
    });
    const missing = rowsOf(await check(3, 'a\tb\tc\na\tb\n'));
    expect(missing).toMatchObject({ message: 'missing data for column "c3"', where: 'COPY t, line 2: "a\tb"' });
    await check(2, 'a\tb\n', { columnNames: ['first col', 'Second"'] });
    await check(2, 'a\n', { columnNames: ['x', 'y'] });
    await check(2, '\n');
    await check(0, '\n');
    await check(0, 'x\n');
    await check(1, `${'é'.repeat(80)}\t${'x'.repeat(30)}\n`); // the context is cut at 100 bytes
  });

  it('skips or matches the header line', async () => {
    await check(1, 'h\na\nb\n', { header: true });
    await check(1, 'h\r\na\r\n', { header: true });
    await check(1, 'h\na\r\n', { header: true });
    await check(1, 'h\\xff\tx\ty\na\n', { header: true }); // the header is not parsed
    await check(2, 'h\na\n', { header: true });
    await check(1, '\\.\n', { header: true });
    await check(1, 'h\\.\n', { header: true });
    await check(0, 'h\n\n', { header: true });
    await check(2, 'c1\tc2\na\tb\n', { header: 'match' });
    await check(2, 'c1\na\tb\n', { header: 'match' });
    await check(2, 'c1\t\\N\na\tb\n', { header: 'match' });
    await check(1, 'c\\xff\n', { header: 'match' });
    await check(1, '', { header: 'match' });
    await check(1, '\\.\n', { header: 'match' });
    await check(1, 'c1', { header: 'match' });
  });

  it('rejects invalid UTF-8 in the data, on the right line', async () => {
    await check(1, [0x61, 0xff, 0x62, 0x0a]);
    await check(1, [0x61, 0x0a, 0x62, 0xc3, 0x28, 0x0a]);
    await check(1, [0x61, 0x0a, 0x62, 0xc3]); // incomplete at the end
    await check(1, [0x61, 0x0a, 0x62, 0x00, 0x0a]); // NUL
    await check(1, [0xed, 0xa0, 0x80, 0x0a]);
    await check(1, [0xf4, 0x90, 0x80, 0x80, 0x0a]);
    await check(1, [0xe0, 0x80, 0x41, 0x0a]);
    await check(2, [0x61, 0x09, 0x62, 0x09, 0x63, 0x0a, 0xff]); // an earlier line's error comes first
  });

  it('decodes multibyte characters split anywhere', async () => {
    await check(2, 'é\t€\n😀\t日本語\n');
    await check(1, [0xef, 0xbb, 0xbf, 0x61, 0x0a, 0xef, 0xbb, 0xbf, 0x0a]); // a BOM is data
  });
});

describe('csv format', () => {
  const csv = { format: 'csv' } as const;

  it('splits fields, honours quotes and doubled quotes', async () => {
    expect(rowsOf(await check(2, 'a,b\n"c,d",e\n"x""y",\n', csv))).toEqual([
      ['a', 'b'],
      ['c,d', 'e'],
      ['x"y', null],
    ]);
    await check(2, 'a"b,c"d,e\n', csv); // quotes in the middle of a field
    await check(1, '"a"b\n', csv);
    await check(1, '  \n', csv);
    await check(1, '"a"', csv);
    await check(2, 'a,b', csv);
  });

  it('keeps newlines inside quotes', async () => {
    await check(2, '"a\nb",c\n', csv);
    await check(2, '"a\r\nb",c\r\n', csv);
    await check(2, 'x,y\r"a\rb",c\r', csv);
  });

  it('matches NULL only on unquoted fields', async () => {
    expect(rowsOf(await check(2, ',""\n', csv))).toEqual([[null, '']]);
    await check(1, '\n', csv);
    await check(1, '""\n', csv);
    await check(1, '"\\N"\n\\N\n', { ...csv, null: '\\N' });
    await check(2, 'NULL,"NULL"\n', { ...csv, null: 'NULL' });
  });

  it('applies FORCE_NULL and FORCE_NOT_NULL per column', async () => {
    expect(
      rowsOf(await check(2, 'a,\n,b\n"",""\n', { ...csv, forceNotNull: [true, false], forceNull: [false, true] })),
    ).toEqual([
      ['a', null],
      ['', 'b'],
      ['', null],
    ]);
    await check(2, 'x,"x"\n', { ...csv, null: 'x', forceNotNull: [true, false], forceNull: [false, true] });
    await check(2, ',""\n', { ...csv, forceNotNull: [true, true], forceNull: [true, true] });
  });

  it('supports other quote, escape and delimiter characters', async () => {
    await check(2, '"a\\"b",c\n', { ...csv, escape: '\\' });
    await check(2, '"a\\\\",c\n', { ...csv, escape: '\\' });
    await check(2, '"a\\x",c\n', { ...csv, escape: '\\' });
    await check(2, '"a\\\nb\\"",c\n', { ...csv, escape: '\\' });
    await check(2, 'a\\"b,c\n', { ...csv, escape: '\\' }); // escape outside quotes is data
    await check(2, "'a,b',c\n", { ...csv, quote: "'" });
    await check(2, 'a;b\n', { ...csv, delimiter: ';' });
    await check(2, 'a\tb\n', { ...csv, delimiter: '\t' });
    await check(2, 'a\\b\n', { ...csv, delimiter: '\\' });
  });

  it('treats backslash-dot as data (PostgreSQL 18)', async () => {
    expect(rowsOf(await check(1, 'a\n\\.\nb\n', csv))).toEqual([['a'], ['\\.'], ['b']]);
  });

  it('rejects unterminated quoted fields, counting lines as PostgreSQL does', async () => {
    const e = rowsOf(await check(1, 'x\n"abc\ndef', csv));
    expect(e).toEqual({
      code: '22P04',
      message: 'unterminated CSV quoted field',
      hint: undefined,
      where: 'COPY t, line 3: ""abc\ndef"',
    });
    await check(1, '"abc', csv);
    await check(1, '"abc\ndef', csv); // newline style still unknown: not counted
    await check(1, '"a\nb"\n"c', csv);
    await check(1, 'a"\n', csv);
    await check(1, '"a""', csv);
    await check(2, 'a,"b\\"\n', { ...csv, escape: '\\' });
  });

  it('rejects unquoted mixed line endings', async () => {
    await check(1, 'a\r\nb\n', csv);
    await check(1, 'a\nb\r\n', csv);
    await check(1, 'a\rb\n', csv);
  });

  it('reports extra and missing columns with the line', async () => {
    await check(2, '"a\nb",c\nx,y,z\n', csv);
    await check(2, 'x,y\n"a\nb",c,z\n', csv);
    await check(2, 'x,y\r\n"a\r\nb",c,z\r\n', csv);
    await check(2, '"a\r\nb",c,z\r\n', csv);
    await check(2, 'x,y\r"a\rb",c,z\r', csv);
    await check(2, 'x,y\r"a\nb",c,z\r', csv);
    await check(3, 'a,"b"\n', csv);
    await check(0, '"', csv);
  });

  it('skips or matches the header line', async () => {
    await check(1, 'h\nv\n', { ...csv, header: true });
    await check(1, '"h\n', { ...csv, header: true }); // unterminated header: not parsed, no error
    await check(1, '"h\nx"\ny\n', { ...csv, header: true });
    await check(2, 'c1,"c2"\na,b\n', { ...csv, header: 'match' });
    await check(2, 'c1,\na,b\n', { ...csv, header: 'match' });
    await check(1, '"c1\n', { ...csv, header: 'match' });
    // FORCE_NULL / FORCE_NOT_NULL do not apply to the header line
    await check(2, '"",x\n', { ...csv, header: 'match', forceNull: [true, false] });
    await check(1, '\r\n', { ...csv, header: 'match', forceNotNull: [true] });
  });

  it('decodes multibyte characters split anywhere', async () => {
    await check(2, '"é,€",😀\n日本,"語\n"\n', csv);
  });
});

describe('options', () => {
  const invalid: Partial<CopyFormatOptions>[] = [
    { delimiter: '||' },
    { delimiter: '\n' },
    { delimiter: '\\' },
    { delimiter: 'a' },
    { delimiter: '.' },
    { delimiter: 'é' },
    { delimiter: '' },
    { null: 'a\nb' },
    { null: 'a\tb' },
    { quote: '"' },
    { escape: '"' },
    { forceNull: [true] },
    { forceNotNull: [true] },
    { format: 'csv', quote: '' },
    { format: 'csv', quote: ',' },
    { format: 'csv', quote: 'é' },
    { format: 'csv', null: 'a"' },
    { format: 'csv', escape: 'ab' },
    { format: 'csv', delimiter: '"' },
    { format: 'csv', delimiter: '\r' },
    { format: 'csv', null: 'x', delimiter: 'x' },
  ];
  it('rejects what PostgreSQL rejects, with the same errors', async () => {
    for (const opts of invalid) {
      const pg = await oracle(1, toBytes('x\n'), opts);
      expect('error' in pg, JSON.stringify(opts)).toBe(true);
      let mine: Outcome;
      try {
        compileCopyOptions({ format: 'text', ...opts });
        mine = { rows: [] };
      } catch (e) {
        mine = errorOutcome(e);
      }
      expect(mine, JSON.stringify(opts)).toEqual(pg);
    }
  });

  it('accepts delimiters PostgreSQL accepts', async () => {
    await check(1, 'x\n', { delimiter: ' ' });
    await check(1, 'x\n', { delimiter: 'Z' });
    await check(1, 'x\n', { null: '\\.' });
    await check(1, 'x\n', { format: 'csv', delimiter: 'a' });
    await check(1, 'x\n', { format: 'csv', delimiter: '.' });
  });
});

describe('randomised comparison with PostgreSQL', () => {
  // A small deterministic PRNG (mulberry32).
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const pieces: Record<'text' | 'csv', (string | number)[]> = {
    text: ['a', 'N', '\t', '\t', '|', '\n', '\n', '\r', '\r\n', '\\', '\\', '\\.', '.', 'x', 'A', '4', '1', '7', 'é', 'f', '0', '\\N', 0x00, 0xff],
    csv: ['a', ',', ',', '"', '"', '""', '\n', '\n', '\r', '\r\n', '\\', '\\.', '.', 'é', ' ', "'", 'N', '\\N', 'x'],
  };

  function randomCase(r: () => number): { data: Uint8Array; ncols: number; opts: Partial<CopyFormatOptions> } {
    const format = r() < 0.5 ? 'text' : 'csv';
    const bytes: number[] = [];
    const len = 1 + Math.floor(r() * 20);
    for (let k = 0; k < len; k++) {
      const p = pieces[format][Math.floor(r() * pieces[format].length)]!;
      if (typeof p === 'number') bytes.push(p);
      else bytes.push(...Buffer.from(p));
    }
    const ncols = Math.floor(r() * 4);
    const opts: Partial<CopyFormatOptions> = { format };
    const x = r();
    const y = r();
    if (format === 'text') {
      if (x < 0.15) opts.delimiter = '|';
      else if (x < 0.25) opts.delimiter = 'A';
      if (y < 0.1) opts.null = '';
      else if (y < 0.2) opts.null = 'N';
      else if (y < 0.25) opts.null = '\\x';
    } else {
      if (x < 0.2) opts.escape = '\\';
      else if (x < 0.3) opts.quote = "'";
      else if (x < 0.35) Object.assign(opts, { quote: "'", escape: '"' });
      if (y < 0.15) opts.null = 'N';
      else if (y < 0.2) opts.null = '\\N';
      const flags = () => Array.from({ length: ncols }, () => r() < 0.5);
      if (r() < 0.15 && ncols > 0) opts.forceNull = flags();
      if (r() < 0.15 && ncols > 0) opts.forceNotNull = flags();
    }
    const h = r();
    if (h < 0.1) opts.header = true;
    else if (h < 0.15) opts.header = 'match';
    return { data: Uint8Array.from(bytes), ncols, opts };
  }

  for (const seed of [42, 4242]) {
    it(`random inputs decode as in PostgreSQL (seed ${seed})`, async () => {
      const r = rng(seed);
      for (let n = 0; n < 200; n++) {
        const { data, ncols, opts } = randomCase(r);
        const expected = await oracle(ncols, data, opts);
        const label = JSON.stringify({ data: Buffer.from(data).toString('latin1'), ncols, opts });
        expect(ours(ncols, [data], opts), label).toEqual(expected);
        const k = 1 + Math.floor(r() * Math.max(1, data.length - 1));
        expect(ours(ncols, [data.subarray(0, k), data.subarray(k)], opts), `${label} split at ${k}`).toEqual(expected);
        const bytes = Array.from(data, (_, i) => data.subarray(i, i + 1));
        expect(ours(ncols, bytes, opts), `${label} 1-byte chunks`).toEqual(expected);
      }
    }, 60_000);
  }
});

describe('single messages (Kafka)', () => {
  it('decodes one row per message, with or without a trailing newline', () => {
    const text = { format: 'text', columnCount: 3 } as const;
    expect(decodeLine('a\t\\N\tc\\td', text)).toEqual(['a', null, 'c\td']);
    expect(decodeLine('a\t\\N\tc\n', text)).toEqual(['a', null, 'c']);
    expect(decodeLine(Buffer.from('é\t2\t3\r\n'), text)).toEqual(['é', '2', '3']);
    expect(decodeLine('', text)).toBeNull();
    const csv = { format: 'csv', columnNames: ['a', 'b'] } as const;
    expect(decodeLine('"x,y",', csv)).toEqual(['x,y', null]);
    expect(decodeLine('"multi\nline",2', csv)).toEqual(['multi\nline', '2']);
  });

  it('carries no state between messages', () => {
    const d = new CopyLineDecoder(1, { format: 'text' });
    expect(d.decode('a\r\n')).toEqual(['a']);
    expect(d.decode('b\n')).toEqual(['b']); // a different newline style is fine in the next message
    expect(d.decode('\\.\n')).toBeNull(); // only the end-of-data marker
    expect(d.decode('c')).toEqual(['c']);
  });

  it('reports errors like COPY does', () => {
    const opts = { format: 'text', columnCount: 2, relationName: 's' } as const;
    expect(() => decodeLine('a\tb\tc', opts)).toThrow(CopyFormatError);
    try {
      decodeLine('a', opts);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: '22P04', message: 'missing data for column "column 2"', detail: 'COPY s, line 1: "a"' });
    }
    try {
      decodeLine(Buffer.from([0x61, 0x09, 0xff]), opts);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0xff', lineNumber: 1 });
    }
    expect(() => decodeLine('a\tb\nc\td\n', opts)).toThrow('more than one row');
    expect(decodeAll('a\tb\nc\td\n', opts)).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });
});

describe('streaming', () => {
  it('keeps a huge record spread over many chunks linear', () => {
    const field = 'x'.repeat(2_000_000);
    const data = Buffer.from(`${field}\tend\nshort\trow\n`);
    const rows: CopyRow[] = [];
    const d = new CopyDecoder(2, { format: 'text' }, (b) => rows.push(...b));
    const t0 = performance.now();
    for (let o = 0; o < data.length; o += 1000) d.push(data.subarray(o, o + 1000));
    d.end();
    expect(rows.map((r) => r[1])).toEqual(['end', 'row']);
    expect(rows[0]![0]!.length).toBe(2_000_000);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('ignores data after the end marker and rethrows after an error', () => {
    const d = new CopyDecoder(1, { format: 'text' }, () => {});
    d.push(Buffer.from('a\n\\.\n'));
    d.push(Buffer.from('b\tc\n'));
    d.end();
    expect(d.rowCount).toBe(1);
    const e = new CopyDecoder(2, { format: 'text' }, () => {});
    expect(() => e.push(Buffer.from('a\tb\tc\n'))).toThrow('extra data after last expected column');
    expect(() => e.end()).toThrow('extra data after last expected column');
  });

  it('decodes 1,000,000 rows fast', () => {
    const parts: string[] = [];
    for (let i = 0; i < 1_000_000; i++) parts.push(`url_${i % 1000}\t${i % 997}\t78.5\n`);
    const text = Buffer.from(parts.join(''));
    const csv = Buffer.from(parts.join('').replaceAll('\t', ','));
    for (const [format, data] of [
      ['text', text],
      ['csv', csv],
    ] as const) {
      let rows = 0;
      const t0 = performance.now();
      const d = new CopyDecoder(3, { format }, (b) => {
        rows += b.length;
      });
      for (let o = 0; o < data.length; o += 65536) d.push(data.subarray(o, o + 65536));
      d.end();
      const ms = performance.now() - t0;
      expect(rows).toBe(1_000_000);
      console.log(`COPY ${format} decode: ${Math.round((rows / ms) * 1000).toLocaleString('en-US')} rows/s (${ms.toFixed(0)} ms)`);
    }
  });
});
