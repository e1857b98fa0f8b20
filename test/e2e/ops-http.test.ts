import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';
import { waitFor } from '../support/wait.ts';

/** A Prometheus exposition line: name{labels} value (comments and blank lines aside). */
const sampleLine = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|NaN|[+-]Inf)$/;

/**
 * The operators' HTTP endpoints: /metrics parses as Prometheus text and
 * carries the pipeline's figures, /healthz answers, /readyz says what is
 * wrong (a Kafka sink that cannot deliver) with 503.
 */
describe('/metrics, /healthz and /readyz', () => {
  let sluice: RunningSluice;
  let client: pg.Client;
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${sluice.httpPort}${path}`);
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
  };

  beforeAll(async () => {
    sluice = await startSluice({ http: true });
    client = await sluice.client();
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('serves the pipeline as Prometheus text', async () => {
    await client.query('CREATE STREAM hits (url text)');
    await client.query('CREATE VIEW per_url AS SELECT url, count(*) FROM hits GROUP BY url');
    await client.query("INSERT INTO hits VALUES ('/a'), ('/b'), ('/a')");
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = metrics.body.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(samples.filter((l) => !sampleLine.test(l))).toEqual([]);
    expect(samples).toContain('sluice_stream_input_rows{schema="public",stream="hits"} 3');
    expect(samples).toContain('sluice_view_input_rows{schema="public",name="per_url",type="view"} 3');
    expect(samples).toContain('sluice_view_executions{schema="public",name="per_url",type="view"} 1');
    expect(samples.some((l) => l.startsWith('sluice_process_resident_memory_bytes '))).toBe(true);
    expect((await get('/nope')).status).toBe(404);
  });

  it("ops/prometheus-alerts.yml alerts only on metrics Sluice serves", async () => {
    const rules = readFileSync(path.resolve(import.meta.dirname, '../../ops/prometheus-alerts.yml'), 'utf8');
    const served = new Set([...(await get('/metrics')).body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const used = new Set([...rules.matchAll(/\b(sluice_[a-z0-9_]+)/g)].map((m) => m[1]));
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((name) => !served.has(name))).toEqual([]);
  });

  it('is healthy, and ready until a Kafka sink cannot deliver; readyz then says which and why', async () => {
    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get('/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
    // Nothing listens on port 1: the relay keeps failing.
    await client.query("CREATE FOREIGN TABLE nowhere (n int) SERVER kafka OPTIONS (brokers '127.0.0.1:1', topic 'lost')");
    await client.query('INSERT INTO nowhere VALUES (1)');
    const ready = await waitFor(() => get('/readyz'), (r) => r.status === 503, 60_000, 'readyz to report the failing sink');
    expect(ready.body).toMatch(/^Kafka sink nowhere is retrying: .+/);
    const metrics = (await get('/metrics')).body;
    expect(metrics).toContain('sluice_kafka_sink_retrying{relation="nowhere",topic="lost"} 1');
    expect(metrics).toContain('sluice_kafka_sink_pending_messages{relation="nowhere",topic="lost"} 1');
    await client.query('DROP FOREIGN TABLE nowhere');
    await client.query("DELETE FROM pipeline_kafka.outbox WHERE topic = 'lost'");
  });
});
