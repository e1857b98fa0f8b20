import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, tempDataDir, type RunningSluice } from '../support/sluice.ts';

/**
 * INSERT into a stream from wherever SQL runs in the store, as PipelineDB
 * streams allowed: PREPARE/EXECUTE, DO blocks, PL/pgSQL and SQL functions,
 * a trigger on a table (the classic "mirror every order into a stream"),
 * pipelinedb.insert_into_stream as a table trigger, CTEs. The views reflect
 * the rows when the writing transaction commits, exactly once; a rollback
 * leaves them as they were. Each case is checked against the same rows in a table.
 */
describe('INSERT into a stream from SQL running in the store', () => {
  const dataDir = tempDataDir();
  let sluice: RunningSluice;

  beforeAll(async () => {
    sluice = await startSluice({ dataDir });
    const c = await sluice.client();
    await c.query('CREATE STREAM events (k int, v text)');
    await c.query("CREATE VIEW per_k AS SELECT k, count(*), array_agg(v) AS vs FROM events GROUP BY k");
    await c.query('CREATE VIEW arrivals AS SELECT count(*) FILTER (WHERE arrival_timestamp IS NULL) AS missing FROM events');
  });
  afterAll(() => sluice?.stop({ removeData: true }));

  async function perK(k: number): Promise<{ count: number; vs: string } | undefined> {
    const c = await sluice.client();
    // The values sorted, so the check does not depend on arrival order.
    const rows = (await c.query("SELECT count::int, array_to_string(ARRAY(SELECT unnest(vs) ORDER BY 1), ',') AS vs FROM per_k WHERE k = $1", [k])).rows;
    await c.end();
    return rows[0];
  }

  it('PREPARE/EXECUTE, DO, PL/pgSQL and SQL functions, CTEs and INSERT … SELECT FROM VALUES feed the views', async () => {
    const c = await sluice.client();
    await c.query('PREPARE put (int, text) AS INSERT INTO events VALUES ($1, $2)');
    await c.query("EXECUTE put(1, 'prepared')");
    await c.query("EXECUTE put(1, 'again')");
    await c.query("DO $$ BEGIN INSERT INTO events VALUES (2, 'do'); END $$");
    await c.query("CREATE FUNCTION log_event(k int, v text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO events VALUES (k, v); END $$");
    await c.query("SELECT log_event(3, 'plpgsql')");
    await c.query("CREATE FUNCTION many() RETURNS void LANGUAGE sql AS $$ INSERT INTO events SELECT 1000 + g % 7, 'bulk' FROM generate_series(1, 3000) g $$");
    await c.query('SELECT many()');
    await c.query("WITH picked AS (SELECT 4 AS k, 'cte' AS v) INSERT INTO events SELECT * FROM picked");
    await c.query("INSERT INTO events SELECT * FROM (VALUES (5, 'values')) AS t(k, v)");
    expect(await perK(1)).toEqual({ count: 2, vs: 'again,prepared' });
    expect(await perK(2)).toEqual({ count: 1, vs: 'do' });
    expect(await perK(3)).toEqual({ count: 1, vs: 'plpgsql' });
    expect(await perK(4)).toEqual({ count: 1, vs: 'cte' });
    expect(await perK(5)).toEqual({ count: 1, vs: 'values' });
    const bulk = await c.query('SELECT k, count::int FROM per_k WHERE k >= 1000 ORDER BY k');
    const oracle = await c.query('SELECT 1000 + g % 7 AS k, count(*)::int AS count FROM generate_series(1, 3000) g GROUP BY 1 ORDER BY 1');
    expect(bulk.rows).toEqual(oracle.rows);
    // Every row got its arrival time, as from a client.
    expect((await c.query('SELECT missing::int FROM arrivals')).rows).toEqual([{ missing: 0 }]);
  });

  it('a trigger mirroring a table into the stream: the views change when the transaction commits, and not on rollback', async () => {
    const writer = await sluice.client();
    await writer.query('CREATE TABLE orders (id serial PRIMARY KEY, k int, v text)');
    await writer.query('CREATE FUNCTION mirror_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO events VALUES (NEW.k, NEW.v); RETURN NEW; END $$');
    await writer.query('CREATE TRIGGER mirror AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION mirror_order()');
    await writer.query("INSERT INTO orders (k, v) VALUES (10, 'a'), (10, 'b')");
    expect(await perK(10)).toEqual({ count: 2, vs: 'a,b' });
    await writer.query('BEGIN');
    await writer.query("INSERT INTO orders (k, v) VALUES (11, 'pending')");
    expect(await perK(11)).toBeUndefined();
    await writer.query('COMMIT');
    expect(await perK(11)).toEqual({ count: 1, vs: 'pending' });
    await writer.query('BEGIN');
    await writer.query("INSERT INTO orders (k, v) VALUES (12, 'undone')");
    await writer.query('ROLLBACK');
    expect(await perK(12)).toBeUndefined();
    // A failing statement after the trigger ran takes the stream's rows with it.
    await writer.query('CREATE UNIQUE INDEX ON orders (v)');
    await expect(writer.query("INSERT INTO orders (k, v) VALUES (13, 'ok'), (13, 'a')")).rejects.toMatchObject({ code: '23505' });
    expect(await perK(13)).toBeUndefined();
  });

  it("pipelinedb.insert_into_stream('s') as a table trigger writes each row's columns by name", async () => {
    const c = await sluice.client();
    await c.query('CREATE TABLE signups (v text, ignored bool, k int)');
    await c.query("CREATE TRIGGER to_events AFTER INSERT ON signups FOR EACH ROW EXECUTE FUNCTION pipelinedb.insert_into_stream('events')");
    await c.query("INSERT INTO signups VALUES ('x', true, 20), ('y', false, 20)");
    expect(await perK(20)).toEqual({ count: 2, vs: 'x,y' });
  });

  it('RETURNING is refused, from a client and from a function, with 0A000', async () => {
    const c = await sluice.client();
    await expect(c.query("INSERT INTO events VALUES (30, 'r') RETURNING k")).rejects.toMatchObject({ code: '0A000' });
    await c.query("CREATE FUNCTION returning_insert() RETURNS int LANGUAGE plpgsql AS $$ DECLARE got int; BEGIN INSERT INTO events VALUES (31, 'r') RETURNING k INTO got; RETURN got; END $$");
    await expect(c.query('SELECT returning_insert()')).rejects.toMatchObject({ code: '0A000' });
    expect(await perK(30)).toBeUndefined();
    expect(await perK(31)).toBeUndefined();
  });

  it('a transaction writing a group itself and then through a trigger gets an error after lock_timeout, never a hang', async () => {
    const c = await sluice.client();
    await c.query('BEGIN');
    await c.query("INSERT INTO events VALUES (40, 'direct')");
    const started = Date.now();
    await expect(c.query("INSERT INTO orders (k, v) VALUES (40, 'through trigger')")).rejects.toMatchObject({ code: '55P03' });
    expect(Date.now() - started).toBeLessThan(30_000);
    await c.query('ROLLBACK');
    expect(await perK(40)).toBeUndefined();
  }, 60_000);

  it('still works after a restart (Sluice listening on another port)', async () => {
    await sluice.stop();
    sluice = await startSluice({ dataDir });
    const c = await sluice.client();
    await c.query("INSERT INTO orders (k, v) VALUES (50, 'after restart')");
    expect(await perK(50)).toEqual({ count: 1, vs: 'after restart' });
  });
});
