import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * `_mrel` tables stay small: every update of a group rewrites its row, so they
 * keep room on each page for HOT updates (PipelineDB's fillfactor, 50 by
 * default) and are vacuumed early; asked of PostgreSQL's own statistics.
 */
describe('materialization tables', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await client.query('CREATE STREAM hits (url text, n int)');
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('are created with fillfactor 50 and early autovacuum, or the fillfactor the view asks for (PipelineDB option)', async () => {
    await client.query('CREATE VIEW dflt AS SELECT url, count(*) FROM hits GROUP BY url');
    await client.query('CREATE VIEW tight WITH (fillfactor = 90) AS SELECT url, sum(n) FROM hits GROUP BY url');
    const options = async (table: string) => (await client.query('SELECT reloptions FROM pg_class WHERE oid = $1::regclass', [table])).rows[0].reloptions;
    expect(await options('dflt_mrel')).toEqual(['fillfactor=50', 'autovacuum_vacuum_scale_factor=0.02', 'autovacuum_vacuum_threshold=1000', 'autovacuum_analyze_scale_factor=0.05']);
    expect((await options('tight_mrel'))[0]).toBe('fillfactor=90');
    await expect(client.query('CREATE VIEW bad WITH (fillfactor = 5) AS SELECT url, count(*) FROM hits GROUP BY url')).rejects.toMatchObject({ code: '22023' });
  });

  it('update groups in place (HOT), so dead rows stay few, where fillfactor 100 would not', async () => {
    await client.query('CREATE VIEW roomy AS SELECT url, count(*), sum(n) FROM hits GROUP BY url');
    await client.query('CREATE VIEW packed WITH (fillfactor = 100) AS SELECT url, count(*), sum(n) FROM hits GROUP BY url');
    for (let i = 0; i < 10; i++) await client.query(`INSERT INTO hits SELECT '/page' || (g % 10000), g FROM generate_series(1, 10000) g`);
    // Statistics reach the shared counters when a backend flushes them: ask this one to, then read them.
    await client.query('SELECT pg_stat_force_next_flush()');
    await client.query('SELECT 1');
    const stats = async (table: string) =>
      (await client.query('SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot, n_dead_tup::int AS dead, pg_relation_size(relid)::int AS bytes FROM pg_stat_user_tables WHERE relname = $1', [table])).rows[0];
    const roomy = await stats('roomy_mrel');
    const packed = await stats('packed_mrel');
    expect(roomy.upd).toBe(9 * 10_000);
    expect(roomy.hot / roomy.upd).toBeGreaterThan(0.9);
    expect(packed.hot / packed.upd).toBeLessThan(0.5);
    expect(roomy.dead).toBeLessThan(packed.dead / 2);
    expect(roomy.bytes).toBeLessThan(packed.bytes);
    expect((await client.query('SELECT sum(count)::int AS n FROM roomy')).rows).toEqual([{ n: 100_000 }]);
  });
});
