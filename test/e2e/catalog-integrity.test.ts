import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, tempDataDir, type RunningSluice } from '../support/sluice.ts';

/**
 * Sluice's catalog stays in step with whatever the store drops, its
 * internals cannot be dropped, and a start that finds something it cannot
 * load starts anyway and says what.
 */
describe('catalog integrity', () => {
  const dataDir = tempDataDir();
  let sluice: RunningSluice;

  beforeAll(async () => {
    sluice = await startSluice({ dataDir });
  });
  afterAll(() => sluice?.stop({ removeData: true }));

  async function restart(): Promise<void> {
    await sluice.stop();
    sluice = await startSluice({ dataDir });
  }

  it('DROP SCHEMA … CASCADE of a schema holding streams, views and a transform: the server restarts and the names can be used again', async () => {
    const client = await sluice.client();
    await client.query('CREATE SCHEMA app');
    await client.query('CREATE STREAM app.s (k int)');
    await client.query('CREATE VIEW app.v AS SELECT k, count(*) FROM app.s GROUP BY k');
    await client.query('CREATE VIEW app.chained AS SELECT (new).k, count(*) FROM output_of(\'app.v\') GROUP BY 1');
    await client.query('CREATE STREAM app.out (k int)');
    await client.query("CREATE VIEW app.t WITH (action = transform, outputfunc = pipelinedb.insert_into_stream('app.out')) AS SELECT k FROM app.s");
    await client.query('CREATE STREAM kept (k int)');
    await client.query('CREATE VIEW kept_v AS SELECT k, count(*) FROM kept GROUP BY k');
    await client.query('INSERT INTO app.s VALUES (1), (1), (2)');
    await client.query('DROP SCHEMA app CASCADE');
    expect((await client.query("SELECT count(*)::int AS n FROM sluice.views WHERE schema = 'app'")).rows).toEqual([{ n: 0 }]);
    // The engine forgot them too: the same names make new objects at once.
    await client.query('CREATE SCHEMA app');
    await client.query('CREATE STREAM app.s (k int, note text)');
    await client.query('CREATE VIEW app.v AS SELECT note, count(*) FROM app.s GROUP BY note');
    await client.query("INSERT INTO app.s VALUES (1, 'again')");
    await client.query('INSERT INTO kept VALUES (7)');
    await restart();
    const after = await sluice.client();
    expect((await after.query('SELECT note, count::int FROM app.v')).rows).toEqual([{ note: 'again', count: 1 }]);
    await after.query('INSERT INTO kept VALUES (7)');
    expect((await after.query('SELECT k, count::int FROM kept_v')).rows).toEqual([{ k: 7, count: 2 }]);
    expect((await after.query('SELECT count(*)::int AS n FROM sluice.broken_views')).rows).toEqual([{ n: 0 }]);
  });

  it("refuses to drop Sluice's servers, wrapper, schemas and catalog (2BP01), and everything still works after", async () => {
    const client = await sluice.client();
    for (const drop of [
      'DROP SERVER pipelinedb CASCADE',
      'DROP SERVER kafka',
      'DROP EXTENSION postgres_fdw',
      'DROP USER MAPPING FOR PUBLIC SERVER pipelinedb',
      'DROP FOREIGN DATA WRAPPER sluice_stream CASCADE',
      'DROP SCHEMA sluice CASCADE',
      'DROP SCHEMA pipelinedb CASCADE',
      'DROP SCHEMA pipeline_kafka CASCADE',
      'DROP TABLE sluice.views CASCADE',
      'DROP FUNCTION pipelinedb.version()',
    ]) {
      await expect(client.query(drop), drop).rejects.toMatchObject({ code: '2BP01', message: expect.stringContaining('because Sluice depends on it') });
    }
    // PostgreSQL's own dependency rule answers first here, with the same SQLSTATE.
    await expect(client.query('ALTER TABLE sluice.views DROP COLUMN plan')).rejects.toMatchObject({ code: '2BP01' });
    await client.query('CREATE STREAM after_drops (k int)');
    await client.query('CREATE VIEW after_drops_v AS SELECT count(*) FROM after_drops');
    await client.query('INSERT INTO after_drops VALUES (1)');
    expect((await client.query('SELECT count::int FROM after_drops_v')).rows).toEqual([{ count: 1 }]);
    // Sluice's own drops of its parts still work (a transform's trigger table lives in sluice).
    await client.query('CREATE TABLE fed (k int)');
    await client.query("CREATE FUNCTION feed_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO fed VALUES (NEW.k); RETURN NEW; END $$");
    await client.query('CREATE VIEW after_drops_t WITH (action = transform, outputfunc = feed_fn) AS SELECT k FROM after_drops');
    await client.query('DROP VIEW after_drops_t');
    await client.query('DROP VIEW after_drops_v');
    await client.query('DROP STREAM after_drops');
  });

  it('a damaged view and a dropped public schema: the server starts, says what it could not load or repaired, and runs the rest', async () => {
    const client = await sluice.client();
    await client.query('CREATE SCHEMA keep');
    await client.query('CREATE STREAM keep.s (k int)');
    await client.query('CREATE VIEW keep.ok AS SELECT k, count(*) FROM keep.s GROUP BY k');
    await client.query('CREATE VIEW keep.damaged AS SELECT count(*) FROM keep.s');
    await client.query("UPDATE sluice.views SET plan = jsonb_set(plan, '{stream,name}', '\"nowhere\"') WHERE schema = 'keep' AND name = 'damaged'");
    await client.query('DROP SCHEMA public CASCADE');
    await restart();
    const after = await sluice.client();
    const broken = await after.query('SELECT schema, name, reason FROM sluice.broken_views');
    expect(broken.rows).toEqual([{ schema: 'keep', name: 'damaged', reason: expect.stringContaining('nowhere') }]);
    await after.query('INSERT INTO keep.s VALUES (5)');
    expect((await after.query('SELECT k, count::int FROM keep.ok')).rows).toEqual([{ k: 5, count: 1 }]);
    // public was made again (PipelineDB's functions live there), as PostgreSQL makes it.
    expect((await after.query("SELECT minute('2026-12-04 10:11:12+00'::timestamptz) AS m")).rows[0].m).toEqual(new Date('2026-12-04T10:11:00Z'));
    expect((await after.query("SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'public'")).rows).toEqual([{ owner: 'pg_database_owner' }]);
  });
});
