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
