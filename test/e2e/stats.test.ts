import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';
import { waitFor } from '../support/wait.ts';

/**
 * PipelineDB's stats views over the wire: what each stream took, what each
 * view and transform did with it (executions, time, errors with the last
 * one), and the process; written about every second, so tests wait for them.
 */
describe('pipelinedb.stream_stats, query_stats and proc_stats', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('count the rows each stream, view and transform took, and the errors a view raised, with the last one', async () => {
    await client.query('CREATE STREAM orders (shop text, qty int)');
    await client.query('CREATE STREAM big_orders (shop text, qty int)');
    await client.query('CREATE VIEW per_shop AS SELECT shop, count(*), sum(qty) FROM orders GROUP BY shop');
    await client.query("CREATE VIEW big AS SELECT shop, qty FROM orders WHERE qty > 50");
    await client.query("CREATE VIEW to_big WITH (action = transform, outputfunc = pipelinedb.insert_into_stream('big_orders')) AS SELECT shop, qty FROM orders WHERE qty > 90");
    await client.query('CREATE VIEW big_count AS SELECT count(*) FROM big_orders');
    // Fails for qty = 0: the statement is refused, and the view and stream say so.
    await client.query('CREATE VIEW ratio AS SELECT shop, sum(100 / qty) AS r FROM orders GROUP BY shop');
    await client.query("INSERT INTO orders SELECT 'shop' || (g % 10), g FROM generate_series(1, 100) g");
    await client.query("INSERT INTO orders VALUES ('s', 5), ('t', 95)");
    await expect(client.query("INSERT INTO orders VALUES ('s', 0)")).rejects.toMatchObject({ code: '22012' });

    const streams = await waitFor(
      () => client.query('SELECT stream, input_rows::int, input_batches::int, errors::int, last_error FROM pipelinedb.stream_stats ORDER BY stream'),
      (r) => r.rows.some((row) => row.stream === 'orders' && row.errors === 1),
      10_000,
      'the stream stats to show the failed INSERT',
    );
    // The failed statement's rows reached the views before the error rolled them back: they count as taken.
    expect(streams.rows).toEqual([
      { stream: 'big_orders', input_rows: 11, input_batches: 2, errors: 0, last_error: null },
      { stream: 'orders', input_rows: 103, input_batches: 3, errors: 1, last_error: expect.stringMatching(/^22012: division by zero/) },
    ]);
    // Views take a batch before transforms; the failing one stops the rest (the transform never saw it), and
    // views that fold rows in memory write once per statement (the failed one wrote nothing).
    const views = await client.query('SELECT name, type, input_rows::int, executions::int, errors::int, last_error, avg_ms >= 0 AS timed, p99_ms >= avg_ms * 0 AS has_p99 FROM pipelinedb.query_stats ORDER BY name');
    expect(views.rows).toEqual([
      { name: 'big', type: 'view', input_rows: 103, executions: 3, errors: 0, last_error: null, timed: true, has_p99: true },
      { name: 'big_count', type: 'view', input_rows: 11, executions: 2, errors: 0, last_error: null, timed: true, has_p99: true },
      { name: 'per_shop', type: 'view', input_rows: 103, executions: 2, errors: 0, last_error: null, timed: true, has_p99: true },
      { name: 'ratio', type: 'view', input_rows: 103, executions: 2, errors: 1, last_error: expect.stringMatching(/^22012: division by zero/), timed: true, has_p99: true },
      { name: 'to_big', type: 'transform', input_rows: 102, executions: 2, errors: 0, last_error: null, timed: true, has_p99: true },
    ]);
    expect((await client.query('SELECT count(*)::int AS n FROM pipelinedb.view_stats')).rows).toEqual([{ n: 4 }]);

    await client.query('DROP VIEW ratio');
    await waitFor(
      () => client.query("SELECT count(*)::int AS n FROM pipelinedb.query_stats WHERE name = 'ratio'"),
      (r) => r.rows[0].n === 0,
      10_000,
      'a dropped view to leave the stats',
    );
  });

  it('proc_stats shows this Sluice: its pid, start, memory and CPU', async () => {
    const proc = await waitFor(
      () => client.query('SELECT type, pid, start_time <= now() AS started, rss_bytes > 0 AS rss, cpu_user_seconds > 0 AS cpu, updated_at > now() - interval \'10 seconds\' AS fresh FROM pipelinedb.proc_stats'),
      (r) => r.rows[0]?.fresh === true,
      10_000,
      'proc_stats to be written',
    );
    expect(proc.rows).toEqual([{ type: 'sluice', pid: process.pid, started: true, rss: true, cpu: true, fresh: true }]);
  });
});
