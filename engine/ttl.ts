import type { Logger } from 'pino';
import type { ContinuousView } from './continuous-view.ts';
import type { Engine } from './engine.ts';
import { qualifiedName, quoteIdent } from './sql-text.ts';
import { BackgroundSession, inTransaction, type ServingStore, type StoreConnection } from './store.ts';
import { finalFunctionName } from './continuous-view.ts';

/** The engine's notion of "now"; tests inject a controlled one. */
export type Clock = () => Date;

export const systemClock: Clock = () => new Date();

/**
 * Removes a TTL view's expired groups, at most `batchSize` rows per
 * statement; returns how many were removed.
 */
export async function expireOnce(conn: StoreConnection, engine: Engine, view: ContinuousView, now: Date, batchSize: number): Promise<number> {
  const ttl = view.plan.ttl;
  if (!ttl) return 0;
  const mrel = qualifiedName(view.plan.schema, view.plan.mrel);
  // Expired groups leave the view: its output stream gets them with new = NULL.
  const changes = !view.plan.window && engine.wantsChanges(view);
  // The alias must not be a column's name: `fn(m)` would pass a view column named m, not the row.
  const returning = changes ? ` RETURNING ${qualifiedName(view.plan.schema, finalFunctionName(view.plan.name))}(sluice_expired)::text` : '';
  return inTransaction(conn, async () => {
    const result = await conn.query(
      `DELETE FROM ${mrel} AS sluice_expired WHERE ctid IN (SELECT ctid FROM ${mrel} WHERE ${quoteIdent(ttl.column)} < $1::timestamptz - $2::interval LIMIT $3)${returning}`,
      [now.toISOString(), ttl.interval, String(batchSize)],
    );
    if (changes) await engine.emitChanges(conn, view, result.rows.filter(([before]) => before !== null).map(([before]) => ({ before, after: null })));
    return Number(result.command.split(' ')[1] ?? 0);
  });
}

/**
 * The background reaper of TTL views (PipelineDB's): every `intervalMs` it
 * deletes expired groups in small batches, each in its own short turn on the
 * store, so ingestion never waits long behind it.
 */
export class TtlReaper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly line: BackgroundSession;

  constructor(
    store: ServingStore,
    private readonly engine: Engine,
    private readonly clock: Clock,
    private readonly log: Logger | undefined,
    private readonly options: { intervalMs: number; batchSize: number } = { intervalMs: 1000, batchSize: 10_000 },
  ) {
    this.line = new BackgroundSession(store, 'sluice: TTL reaper');
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.reapAll()
        .catch((err) => this.log?.warn({ err }, 'TTL reaper failed; retrying at its next round'))
        .finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Each sliding-window view's rows at the previous round, to find the groups that left the window since. */
  private readonly windows = new Map<ContinuousView, Map<string, string>>();

  async reapAll(): Promise<void> {
    for (const view of this.engine.allViews()) {
      if (view.plan.window) await this.emitWindowExits(view);
      if (!view.plan.ttl) continue;
      for (;;) {
        const removed = await this.line.run((session) => expireOnce(session.conn, this.engine, view, this.clock(), this.options.batchSize));
        if (removed < this.options.batchSize) break;
      }
    }
  }

  /** Groups that left a sliding window since the last round go down its output stream with new = NULL. */
  private async emitWindowExits(view: ContinuousView): Promise<void> {
    if (!this.engine.wantsChanges(view)) {
      this.windows.delete(view);
      return;
    }
    await this.line.run((session) =>
      inTransaction(session.conn, async () => {
        const now = await view.windowRows(session.conn);
        const before = this.windows.get(view);
        this.windows.set(view, now);
        if (!before) return;
        const exits = [...before].filter(([key]) => !now.has(key)).map(([, row]) => ({ before: row, after: null }));
        await this.engine.emitChanges(session.conn, view, exits);
      }),
    );
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await this.line.close();
  }
}
