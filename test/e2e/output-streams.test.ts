import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * Output streams: output_of('v') carries each change of v as (old, new) —
 * old NULL when a group first appears — and views over it chain to any depth.
 */
describe('output streams', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await client.query('CREATE STREAM clicks (url text, ms int)');
    await client.query('CREATE TABLE clicks_t (batch int, url text, ms int)');
    await client.query('CREATE VIEW per_url AS SELECT url, count(*), sum(ms) FROM clicks GROUP BY url');
    await client.query('CREATE VIEW changes AS SELECT (new).url, count(*) AS updates, count(*) FILTER (WHERE old IS NULL) AS inserts FROM output_of(\'per_url\') GROUP BY (new).url');
    await client.query('CREATE VIEW best AS SELECT (new).url AS url, max((new).sum) AS best FROM output_of(\'per_url\') WHERE (new).count >= 2 GROUP BY 1');
    await client.query('CREATE VIEW best_changes AS SELECT count(*) AS n, count(*) FILTER (WHERE old IS NULL) AS firsts FROM output_of(\'best\')');
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('emits old and new for every change, and a three-level chain equals the same SQL over all rows', async () => {
    const batches = [
      [['a', 5], ['b', 1]],
      [['a', 7], ['c', 2], ['c', 3]],
      [['b', 4], ['a', 1]],
      [['d', 9]],
    ];
    for (const [i, rows] of batches.entries()) {
      const values = rows.map(([u, ms]) => `('${u}', ${ms})`).join(', ');
      await client.query(`INSERT INTO clicks VALUES ${values}`);
      await client.query(`INSERT INTO clicks_t SELECT ${i}, * FROM (VALUES ${values}) AS v`);
    }
    // Each INSERT statement changes each of its groups once.
    const changes = await client.query('SELECT url, updates::int, inserts::int FROM changes ORDER BY url');
    const expected = await client.query('SELECT url, count(DISTINCT batch)::int AS updates, 1 AS inserts FROM clicks_t GROUP BY url ORDER BY url');
    expect(changes.rows).toEqual(expected.rows);
    // Level 2: the best sum seen once a group had two rows = its sum now (sums only grow here).
    const best = await client.query('SELECT url, best FROM best ORDER BY url');
    const bestExpected = await client.query('SELECT url, sum(ms) AS best FROM clicks_t GROUP BY url HAVING count(*) >= 2 ORDER BY url');
    expect(best.rows).toEqual(bestExpected.rows);
    // Level 3: how often level 2 changed, and how many of its groups appeared.
    const third = await client.query('SELECT n::int, firsts::int FROM best_changes');
    expect(third.rows).toEqual([{ n: 4, firsts: 3 }]);
  });

  it('keeps every selected row in a view without aggregates (a log of spikes from an output stream)', async () => {
    await client.query('CREATE STREAM hits (url text)');
    await client.query("CREATE VIEW last_5m AS SELECT url, count(*) FROM hits WHERE arrival_timestamp > clock_timestamp() - interval '5 minutes' GROUP BY url");
    await client.query("CREATE VIEW spikes AS SELECT (new).url, (new).count FROM output_of('last_5m') WHERE (new).count > 2");
    await client.query("CREATE VIEW raw_hits AS SELECT url, upper(url) AS loud FROM hits WHERE url <> '/skip'");
    await client.query("INSERT INTO hits VALUES ('/a'), ('/a'), ('/a'), ('/b'), ('/skip')");
    await client.query("INSERT INTO hits VALUES ('/a'), ('/b')");
    expect((await client.query('SELECT url, count::int FROM spikes ORDER BY count')).rows).toEqual([
      { url: '/a', count: 3 },
      { url: '/a', count: 4 },
    ]);
    expect((await client.query('SELECT url, loud FROM raw_hits ORDER BY url')).rows).toEqual([
      { url: '/a', loud: '/A' }, { url: '/a', loud: '/A' }, { url: '/a', loud: '/A' }, { url: '/a', loud: '/A' },
      { url: '/b', loud: '/B' }, { url: '/b', loud: '/B' },
    ]);
  });

  it('refuses to drop a view that other views read, unless CASCADE', async () => {
    await expect(client.query('DROP VIEW per_url')).rejects.toMatchObject({ code: '2BP01', detail: expect.stringContaining('view changes depends on view per_url') });
    await client.query('DROP VIEW per_url CASCADE');
    const left = await client.query("SELECT name FROM pipelinedb.get_views() ORDER BY name");
    expect(left.rows).toEqual([{ name: 'last_5m' }, { name: 'raw_hits' }, { name: 'spikes' }]);
    const relations = await client.query("SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'per_url%' OR relname LIKE 'best%' OR relname LIKE 'changes%'");
    expect(relations.rows).toEqual([{ n: 0 }]);
  });
});
