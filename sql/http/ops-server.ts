import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { PipelineStats } from '../../engine/stats.ts';
import { p99 } from '../../engine/stats.ts';
import { BackgroundSession, type ServingStore } from '../../engine/store.ts';

/**
 * Sluice for operators over HTTP: `/metrics` (Prometheus text: the same
 * figures as pipelinedb.stream_stats / query_stats, pipeline_kafka.sources
 * and sinks, and the process), `/healthz` (the process answers) and
 * `/readyz` (the store answers and no Kafka source or sink is retrying).
 */
export class OpsServer {
  private readonly registry = new Registry();
  private readonly server: Server;
  private readonly line: BackgroundSession;

  constructor(
    private readonly store: ServingStore,
    private readonly stats: PipelineStats,
    private readonly log: Logger,
  ) {
    this.line = new BackgroundSession(store, 'sluice: metrics');
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
    this.defineMetrics();
    this.server = createServer((req, res) => {
      void this.answer(req.url ?? '/').then(
        ({ status, type, body }) => res.writeHead(status, { 'content-type': type }).end(body),
        (err) => {
          this.log.warn({ err, url: req.url }, 'ops endpoint failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    });
  }

  async listen(port: number, host: string): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.line.close();
  }

  private async answer(url: string): Promise<{ status: number; type: string; body: string }> {
    const path = url.split('?')[0];
    if (path === '/metrics') return { status: 200, type: this.registry.contentType, body: await this.registry.metrics() };
    if (path === '/healthz') return { status: 200, type: 'text/plain', body: 'ok\n' };
    if (path === '/readyz') {
      const problems = await this.readiness();
      return problems.length ? { status: 503, type: 'text/plain', body: `${problems.join('\n')}\n` } : { status: 200, type: 'text/plain', body: 'ready\n' };
    }
    return { status: 404, type: 'text/plain', body: 'not found: try /metrics, /healthz or /readyz\n' };
  }

  /** What keeps Sluice from being ready, or nothing. */
  private async readiness(): Promise<string[]> {
    try {
      const rows = await this.query(
        `SELECT 'Kafka source ' || consumer_id || ' (' || topic || ') is ' || state || coalesce(': ' || last_error, '') FROM pipeline_kafka.sources WHERE state = 'retrying'
         UNION ALL SELECT 'Kafka sink ' || relation || ' is ' || state || coalesce(': ' || last_error, '') FROM pipeline_kafka.sinks WHERE state = 'retrying'`,
      );
      return rows.map(([line]) => line as string);
    } catch (err) {
      return [`the serving store does not answer: ${err instanceof Error ? err.message : String(err)}`];
    }
  }

  private async query(sql: string): Promise<(string | null)[][]> {
    return this.line.run(async (session) => (await session.conn.query(sql)).rows);
  }

  private defineMetrics(): void {
    const registers = [this.registry];
    const stats = this.stats;
    const streamLabels = ['schema', 'stream'];
    const viewLabels = ['schema', 'name', 'type'];
    new Gauge({
      name: 'sluice_stream_input_rows', help: 'Rows written to each stream since the start', labelNames: streamLabels, registers,
      collect() {
        this.reset();
        for (const s of stats.snapshot().streams) this.set({ schema: s.schema, stream: s.name }, s.inputRows);
      },
    });
    new Gauge({
      name: 'sluice_stream_errors', help: 'Writes to each stream that failed since the start', labelNames: streamLabels, registers,
      collect() {
        this.reset();
        for (const s of stats.snapshot().streams) this.set({ schema: s.schema, stream: s.name }, s.errors);
      },
    });
    const perView = (name: string, help: string, value: (v: ReturnType<PipelineStats['snapshot']>['views'][number]) => number | null) =>
      new Gauge({
        name, help, labelNames: viewLabels, registers,
        collect() {
          this.reset();
          for (const v of stats.snapshot().views) {
            const x = value(v);
            if (x !== null) this.set({ schema: v.schema, name: v.name, type: v.kind }, x);
          }
        },
      });
    perView('sluice_view_input_rows', 'Stream rows each continuous view or transform took since the start', (v) => v.inputRows);
    perView('sluice_view_executions', 'Writes of each view or transform to the store since the start', (v) => v.executions);
    perView('sluice_view_errors', 'Errors of each view or transform since the start', (v) => v.errors);
    perView('sluice_view_exec_seconds', 'Time each view or transform spent writing, since the start', (v) => v.execMs / 1000);
    perView('sluice_view_p99_seconds', "99th percentile of each view's recent write times", (v) => { const p = p99(v); return p === null ? null : p / 1000; });
    const line = this.line;
    const fromStore = (name: string, help: string, labelNames: string[], sql: string) =>
      new Gauge({
        name, help, labelNames, registers,
        async collect() {
          this.reset();
          // A store that does not answer leaves these out of the scrape (readyz says why).
          const rows = await line.run(async (session) => (await session.conn.query(sql)).rows).catch(() => []);
          for (const row of rows) {
            const labels = Object.fromEntries(labelNames.map((l, i) => [l, row[i] ?? '']));
            this.set(labels, Number(row[labelNames.length]));
          }
        },
      });
    fromStore('sluice_kafka_source_lag_messages', 'Messages each Kafka source has yet to apply, per partition', ['consumer', 'topic', 'partition'],
      'SELECT consumer_id::text, topic, partition::text, lag FROM pipeline_kafka.consumer_lag');
    fromStore('sluice_kafka_source_lag_seconds', 'Age of the last message each Kafka source applied while more wait, per partition', ['consumer', 'topic', 'partition'],
      'SELECT consumer_id::text, topic, partition::text, lag_seconds FROM pipeline_kafka.consumer_lag');
    fromStore('sluice_kafka_source_retrying', '1 while a Kafka source waits for its broker', ['consumer', 'topic'],
      "SELECT consumer_id::text, topic, (state = 'retrying')::int FROM pipeline_kafka.sources");
    fromStore('sluice_kafka_sink_pending_messages', 'Messages in the outbox for each Kafka sink', ['relation', 'topic'],
      'SELECT relation, topic, pending FROM pipeline_kafka.sinks');
    fromStore('sluice_kafka_sink_retrying', '1 while a Kafka sink cannot deliver', ['relation', 'topic'],
      "SELECT relation, topic, (coalesce(state, '') = 'retrying')::int FROM pipeline_kafka.sinks");
    fromStore('sluice_kafka_dead_letters', 'Messages each Kafka source set aside as dead letters', ['consumer', 'topic'],
      'SELECT consumer_id::text, topic, dead_letters FROM pipeline_kafka.sources');
  }
}
