import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * Continuous transforms (PipelineDB's action=transform): rows selected from a
 * stream (or an output stream) go into other streams, to a trigger function
 * called with each row as NEW, and to output_of('transform').
 */
describe('continuous transforms', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await client.query('CREATE STREAM orders (id int, amount numeric, city text)');
    await client.query('CREATE STREAM audit_stream (id int, amount numeric, city text)');
    await client.query('CREATE VIEW audited AS SELECT city, count(*), sum(amount) FROM audit_stream GROUP BY city');
    await client.query("CREATE VIEW big_orders WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('audit_stream')) AS SELECT * FROM orders WHERE amount > 10000");
    await client.query('CREATE TABLE paris_log (id int, amount numeric, note text)');
    await client.query(`CREATE FUNCTION log_paris() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO paris_log VALUES (NEW.id, NEW.amount, TG_ARGV[0]); RETURN NEW; END $$`);
    await client.query("CREATE VIEW paris WITH (action=transform, outputfunc=log_paris('from transform')) AS SELECT id, amount * 2 AS amount FROM orders WHERE city = 'paris'");
    await client.query("CREATE VIEW upper_cities WITH (action=transform) AS SELECT upper(city) AS city, amount FROM orders");
    await client.query('CREATE VIEW per_upper AS SELECT city, count(*) FROM output_of(\'upper_cities\') GROUP BY city');
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('writes selected rows into streams, trigger functions and its output stream', async () => {
    await client.query(`INSERT INTO orders VALUES (1, 20000, 'lyon'), (2, 5, 'paris'), (3, 15000, 'paris'), (4, 1, 'nice')`);
    await client.query(`INSERT INTO orders VALUES (5, 99999.5, 'lyon')`);
    expect((await client.query('SELECT city, count::int, sum FROM audited ORDER BY city')).rows).toEqual([
      { city: 'lyon', count: 2, sum: '119999.5' },
      { city: 'paris', count: 1, sum: '15000' },
    ]);
    expect((await client.query('SELECT * FROM paris_log ORDER BY id')).rows).toEqual([
      { id: 2, amount: '10', note: 'from transform' },
      { id: 3, amount: '30000', note: 'from transform' },
    ]);
    expect((await client.query('SELECT city, count::int FROM per_upper ORDER BY city')).rows).toEqual([
      { city: 'LYON', count: 2 },
      { city: 'NICE', count: 1 },
      { city: 'PARIS', count: 2 },
    ]);
  });

  it('reads an output stream and routes rows by a condition on new and old', async () => {
    await client.query('CREATE STREAM alerts (city text, count bigint)');
    await client.query('CREATE VIEW alert_counts AS SELECT city, count(*) AS alerts, max(count) AS at FROM alerts GROUP BY city');
    await client.query("CREATE VIEW thresholds WITH (action=transform, outputfunc=pipelinedb.insert_into_stream('alerts')) AS SELECT (new).city, (new).count FROM output_of('audited') WHERE (new).count >= 3 AND (old).count < 3");
    await client.query(`INSERT INTO orders VALUES (6, 50000, 'lyon'), (7, 60000, 'paris')`);
    await client.query(`INSERT INTO orders VALUES (8, 70000, 'lyon')`);
    expect((await client.query('SELECT city, alerts::int, at::int FROM alert_counts ORDER BY city')).rows).toEqual([{ city: 'lyon', alerts: 1, at: 3 }]);
  });

  it('lists transforms apart from views, and drops them', async () => {
    const transforms = (await client.query('SELECT name FROM pipelinedb.get_transforms() ORDER BY name')).rows.map((r) => r.name);
    expect(transforms).toEqual(['big_orders', 'paris', 'thresholds', 'upper_cities']);
    expect((await client.query('SELECT name FROM pipelinedb.get_views() ORDER BY name')).rows.map((r) => r.name)).toEqual(['alert_counts', 'audited', 'per_upper']);
    await expect(client.query('DROP VIEW upper_cities')).rejects.toMatchObject({ code: '2BP01' });
    await client.query('DROP VIEW upper_cities CASCADE');
    const logged = (await client.query('SELECT count(*)::int AS n FROM paris_log')).rows[0].n;
    await client.query('DROP VIEW paris');
    await client.query(`INSERT INTO orders VALUES (9, 1, 'paris')`);
    expect((await client.query('SELECT count(*)::int AS n FROM paris_log')).rows).toEqual([{ n: logged }]);
  });

  it('refuses aggregates in a transform', async () => {
    await expect(client.query('CREATE VIEW bad WITH (action=transform) AS SELECT count(*) FROM orders')).rejects.toMatchObject({ code: '0A000' });
  });
});
