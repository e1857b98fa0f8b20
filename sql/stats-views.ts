import type { Logger } from 'pino';
import { p99, type PipelineStats } from '../engine/stats.ts';
import { arrayLiteral } from '../engine/sql-text.ts';
import { BackgroundSession, inTransaction, type ServingStore, type StoreConnection } from '../engine/store.ts';

/**
 * PipelineDB's stats views, and Sluice's columns beside them: the engine's
 * counters (engine/stats.ts) written to unlogged tables about every second,
 * so any client, join or Grafana panel reads them as ordinary SQL.
 */
export const statsCatalogSql = `
CREATE UNLOGGED TABLE IF NOT EXISTS sluice.stream_stats_data (
  schema text NOT NULL, name text NOT NULL,
  input_rows bigint NOT NULL, input_batches bigint NOT NULL, errors bigint NOT NULL,
  last_error text, last_error_at timestamptz, last_input_at timestamptz,
  PRIMARY KEY (schema, name)
);
CREATE UNLOGGED TABLE IF NOT EXISTS sluice.view_stats_data (
  schema text NOT NULL, name text NOT NULL, type text NOT NULL,
  input_rows bigint NOT NULL, executions bigint NOT NULL, exec_ms float8 NOT NULL, p99_ms float8,
  errors bigint NOT NULL, last_error text, last_error_at timestamptz, last_exec_at timestamptz,
  PRIMARY KEY (schema, name)
);
CREATE UNLOGGED TABLE IF NOT EXISTS sluice.proc_stats_data (
  pid integer PRIMARY KEY, start_time timestamptz NOT NULL, rss_bytes bigint, heap_used_bytes bigint,
  cpu_user_seconds float8, cpu_system_seconds float8, updated_at timestamptz NOT NULL
);
CREATE OR REPLACE VIEW pipelinedb.stream_stats AS
  SELECT schema, name AS stream, input_rows, input_batches, errors, last_error, last_error_at, last_input_at FROM sluice.stream_stats_data;
CREATE OR REPLACE VIEW pipelinedb.query_stats AS
  SELECT schema, name, type, input_rows, executions, errors, exec_ms,
         CASE WHEN executions > 0 THEN exec_ms / executions END AS avg_ms, p99_ms, last_error, last_error_at, last_exec_at
  FROM sluice.view_stats_data;
CREATE OR REPLACE VIEW pipelinedb.view_stats AS SELECT * FROM pipelinedb.query_stats WHERE type = 'view';
CREATE OR REPLACE VIEW pipelinedb.proc_stats AS
  SELECT 'sluice'::text AS type, pid, start_time, rss_bytes, heap_used_bytes, cpu_user_seconds, cpu_system_seconds, updated_at FROM sluice.proc_stats_data;
`;

/** Writes the counters to the stats tables every `intervalMs` while anything changed (and the process row always). */
export class StatsWriter {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly line: BackgroundSession;
  private failed = false;

  constructor(
    store: ServingStore,
    private readonly stats: PipelineStats,
    private readonly log: Logger | undefined,
    private readonly intervalMs = 1000,
  ) {
    this.line = new BackgroundSession(store, 'sluice: stats');
  }

  /** Counts start at zero with each start: what an earlier run wrote is cleared. */
  async start(): Promise<void> {
    await this.line.run((session) => session.conn.exec('TRUNCATE sluice.stream_stats_data, sluice.view_stats_data, sluice.proc_stats_data'));
    await this.writeOnce();
    this.timer ??= setInterval(() => {
      this.running ??= this.writeOnce().finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async writeOnce(): Promise<void> {
    try {
      await this.line.run((session) => inTransaction(session.conn, () => this.write(session.conn)));
      if (this.failed) this.log?.info('stats are written again');
      this.failed = false;
    } catch (err) {
      // Stats must never stop the pipeline: say so once, keep counting, retry next round.
      if (!this.failed) this.log?.warn({ err }, 'cannot write pipelinedb.stream_stats / query_stats; retrying every second');
      this.failed = true;
      this.stats.unwritten();
    }
  }

  private async write(conn: StoreConnection): Promise<void> {
    const changed = this.stats.takeChanged();
    if (changed) {
      const { streams, views } = changed;
      const time = (d: Date | null) => (d ? d.toISOString() : null);
      await conn.query('DELETE FROM sluice.stream_stats_data s WHERE NOT (s.schema || \'.\' || s.name = ANY ($1::text[]))', [arrayLiteral(streams.map((s) => `${s.schema}.${s.name}`))]);
      await conn.query(
        `INSERT INTO sluice.stream_stats_data SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::timestamptz[], $8::timestamptz[])
         ON CONFLICT (schema, name) DO UPDATE SET input_rows = EXCLUDED.input_rows, input_batches = EXCLUDED.input_batches, errors = EXCLUDED.errors,
           last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at, last_input_at = EXCLUDED.last_input_at`,
        [
          arrayLiteral(streams.map((s) => s.schema)), arrayLiteral(streams.map((s) => s.name)), arrayLiteral(streams.map((s) => String(s.inputRows))),
          arrayLiteral(streams.map((s) => String(s.inputBatches))), arrayLiteral(streams.map((s) => String(s.errors))), arrayLiteral(streams.map((s) => s.lastError)),
          arrayLiteral(streams.map((s) => time(s.lastErrorAt))), arrayLiteral(streams.map((s) => time(s.lastInputAt))),
        ],
      );
      await conn.query('DELETE FROM sluice.view_stats_data v WHERE NOT (v.schema || \'.\' || v.name = ANY ($1::text[]))', [arrayLiteral(views.map((v) => `${v.schema}.${v.name}`))]);
      await conn.query(
        `INSERT INTO sluice.view_stats_data SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::float8[], $7::float8[], $8::bigint[], $9::text[], $10::timestamptz[], $11::timestamptz[])
         ON CONFLICT (schema, name) DO UPDATE SET type = EXCLUDED.type, input_rows = EXCLUDED.input_rows, executions = EXCLUDED.executions, exec_ms = EXCLUDED.exec_ms,
           p99_ms = EXCLUDED.p99_ms, errors = EXCLUDED.errors, last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at, last_exec_at = EXCLUDED.last_exec_at`,
        [
          arrayLiteral(views.map((v) => v.schema)), arrayLiteral(views.map((v) => v.name)), arrayLiteral(views.map((v) => v.kind)),
          arrayLiteral(views.map((v) => String(v.inputRows))), arrayLiteral(views.map((v) => String(v.executions))), arrayLiteral(views.map((v) => String(v.execMs))),
          arrayLiteral(views.map((v) => { const p = p99(v); return p === null ? null : String(p); })), arrayLiteral(views.map((v) => String(v.errors))),
          arrayLiteral(views.map((v) => v.lastError)), arrayLiteral(views.map((v) => time(v.lastErrorAt))), arrayLiteral(views.map((v) => time(v.lastExecAt))),
        ],
      );
    }
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    await conn.query(
      `INSERT INTO sluice.proc_stats_data VALUES ($1, $2, $3, $4, $5, $6, now())
       ON CONFLICT (pid) DO UPDATE SET rss_bytes = EXCLUDED.rss_bytes, heap_used_bytes = EXCLUDED.heap_used_bytes,
         cpu_user_seconds = EXCLUDED.cpu_user_seconds, cpu_system_seconds = EXCLUDED.cpu_system_seconds, updated_at = now()`,
      [String(process.pid), this.stats.startedAt.toISOString(), String(memory.rss), String(memory.heapUsed), String(cpu.user / 1e6), String(cpu.system / 1e6)],
    );
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await this.line.close();
  }
}
