import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jdbcDriver, runJava, runPython } from '../support/drivers.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * The flows that failed on one shared session, run by the real drivers:
 * pgjdbc (DBeaver, Metabase, every JVM tool) and psycopg 3.
 */
const drivers = path.resolve(import.meta.dirname, '../drivers');
let sluice: RunningSluice;

beforeAll(async () => {
  sluice = await startSluice();
}, 60_000);

afterAll(() => sluice?.stop({ removeData: true }));

describe('real drivers', () => {
  it('pgjdbc: inserts and selects while another connection idles in manual-commit mode, its own application_name, Statement.cancel, setQueryTimeout, setFetchSize', async () => {
    const jar = await jdbcDriver();
    const result = await runJava(path.join(drivers, 'JdbcFlows.java'), jar, [String(sluice.port)]);
    expect(result).toEqual({
      counted_while_other_idle_in_transaction: '100',
      select_while_other_idle_in_transaction: '1',
      application_name: 'jdbc-flows',
      cancel: '57014',
      query_timeout: '57014',
      fetch_size_rows: '1000',
      fetch_size_sum: '500500',
    });
  }, 180_000);

  it('pgjdbc: prepared inserts into a stream of numeric, bytea, uuid, timestamptz, date, int4[], float8, int8, bool and text, sent in binary', async () => {
    const jar = await jdbcDriver();
    const result = await runJava(path.join(drivers, 'JdbcTypes.java'), jar, [String(sluice.port)]);
    expect(result).toEqual({
      rows: '2',
      n: '12345678901234567890.125',
      b: '0001ff',
      u: '0b7e5f4c-1d2a-4c3b-9a8e-7f6d5c4b3a21',
      ts: '2026-12-04 08:30:00.123456+00',
      d: '2026-02-28',
      i4s: '{1,NULL,3}',
      f8: '0.30000000000000004',
      i8: '-9223372036854775808',
      flag: 'true',
      t: 'café',
    });
  }, 180_000);

  it("pgjdbc: CopyManager.copyIn into a stream in binary and CSV, copyOut of the view, and DatabaseMetaData listing both", async () => {
    const jar = await jdbcDriver();
    const result = await runJava(path.join(drivers, 'JdbcCopy.java'), jar, [String(sluice.port)]);
    // The same rows the Java program sends, aggregated here.
    const start = Date.UTC(2026, 0, 1) / 1000;
    const groups = [0, 1, 2].map((g) => ({ rows: 0, n: 0, big: 0n, f: 0, oks: 0, last: 0 }));
    for (let i = 0; i < 3000; i++) {
      const g = groups[i % 3];
      Object.assign(g, { rows: g.rows + 1, n: g.n + i, big: g.big + (1n << 40n), f: g.f + (i % 10 === 0 ? 0 : 0.25), oks: g.oks + (i % 2), last: Math.max(g.last, start + i) });
    }
    for (let i = 0; i < 1000; i++) {
      const g = groups[i % 3];
      Object.assign(g, { rows: g.rows + 1, n: g.n + i, big: g.big + 1n, f: g.f + 0.5, oks: g.oks + (i % 2 === 0 ? 1 : 0), last: Math.max(g.last, start) });
    }
    expect(result).toEqual({
      binary: '3000',
      csv: '1000',
      ...Object.fromEntries(groups.map((g, i) => [`view${i}`, `k${i},${g.rows},${g.n},${g.big},${g.f},${g.oks},${g.last}`])),
      // What a JDBC tool lists: the stream, the view, and (as in PipelineDB) the view's table, its index and its output stream.
      tables: 'jc:FOREIGN TABLE jc_v_osrel:FOREIGN TABLE jc_v_mrel_k_idx:INDEX jc_v_mrel:TABLE jc_v:VIEW',
      columns: 'k:text rows:int8 n:int8 big:numeric f:float8 oks:int8 last:timestamptz',
    });
  }, 180_000);

  it('psycopg 3: Decimal, datetime, date, UUID, bytes, lists, Jsonb and timedelta into a stream, in binary (%b) and as psycopg chooses (%s); COPY FORMAT binary with write_row', async () => {
    const result = await runPython(path.join(drivers, 'psycopg_types.py'), [String(sluice.port)]);
    const row = '1.50|2026-12-04 10:30:00.123456+00|2026-02-28|0b7e5f4c-1d2a-4c3b-9a8e-7f6d5c4b3a21|00ff|{1,2,NULL}|{"a": [1, "x"]}|3 days 00:00:05';
    expect(result).toEqual({
      auto: row,
      binary: row,
      // 3,000 rows by COPY FORMAT binary (psycopg's write_row) in three groups: group g of i = g, g+3, … has n = Σi/4, f = Σi/2, two items per row.
      copy_g0: '1000|374625.00|2026-01-01 00:49:57+00|749250|2000',
      copy_g1: '1000|374875.00|2026-01-01 00:49:58+00|749750|2000',
      copy_g2: '1000|375125.00|2026-01-01 00:49:59+00|750250|2000',
    });
  }, 120_000);

  it('psycopg2 executemany into a stream, SQLAlchemy inspect, pandas read_sql and to_sql', async () => {
    const result = await runPython(path.join(drivers, 'python_stack.py'), [String(sluice.port)]);
    expect(result).toEqual({
      psycopg2: 'lyon:1:3;paris:2:11.75',
      // Other tests of this file add their own views and streams.
      views: expect.stringMatching(/(^|,)revenue(,|$)/),
      revenue_columns: 'city:TEXT,count:BIGINT,total:NUMERIC',
      foreign_tables: expect.stringMatching(/(^|,)orders,.*revenue_osrel(,|$)/),
      read_sql: 'lyon,1,3.0;paris,2,11.75', // pandas reads numeric as float
      to_sql: 'nice,6.5',
    });
  }, 120_000);

  it('psycopg 3: server-side (named) cursors, its own application_name and TimeZone, inserts into a stream', async () => {
    const result = await runPython(path.join(drivers, 'psycopg_flows.py'), [String(sluice.port)]);
    expect(result).toEqual({
      application_name: 'psycopg-flows',
      counted: '50',
      named_cursor_rows: '1000',
      own_timezone: 'Asia/Tokyo',
      other_timezone: 'UTC',
      other_application_name: '',
    });
  }, 120_000);
});
