import type { Logger } from 'pino';
import { Engine } from '../engine/engine.ts';
import { systemClock, TtlReaper, type Clock } from '../engine/ttl.ts';
import { withStoreSession, type ServingStore, type StoreConnection, type StoreSession } from '../engine/store.ts';
import { bootstrapCatalog, catalogViewNames, loadStreams, loadViewPlans } from './catalog.ts';
import { recordBrokenViews } from './catalog-guard.ts';
import { enableStreamLoopback, pointStreamServersAt } from './stream-loopback.ts';
import { streamKey } from '../engine/stream.ts';
import type { ViewPlan } from '../engine/view-plan.ts';
import type { StatementContext } from './context.ts';
import { loadParser } from './parser.ts';
import type { KafkaSources } from '../engine/sources.ts';
import { FunctionRegistry } from './functions.ts';
import { registerKafkaFunctions } from './kafka-functions.ts';
import { registerPipelinedbFunctions } from './pipelinedb-functions.ts';
import { StatsWriter } from './stats-views.ts';

/**
 * Sluice's SQL side as one object: the engine, the serving store, and what
 * statements need from both. The wire layer drives it.
 */
export class SluiceService {
  /** Functions Sluice implements itself (pipeline_kafka.*, pipelinedb.*). */
  readonly functions = new FunctionRegistry();
  serverVersion = '18.0';
  /** Set by the server when Kafka support is wired in. */
  kafka: KafkaSources | undefined;

  private reaper: TtlReaper | undefined;
  private statsWriter: StatsWriter | undefined;

  private constructor(
    readonly store: ServingStore,
    readonly engine: Engine,
    readonly clock: Clock,
  ) {}

  /** Opens the catalog in the store and restores every stream and continuous view. */
  static async start(store: ServingStore, options: { clock?: Clock; ttlIntervalMs?: number; log?: Logger } = {}): Promise<SluiceService> {
    await loadParser();
    const service = new SluiceService(store, new Engine(), options.clock ?? systemClock);
    registerKafkaFunctions(service.functions);
    registerPipelinedbFunctions(service.functions);
    await withStoreSession(store, async (session) => {
      for (const problem of await bootstrapCatalog(session.conn)) options.log?.warn(problem);
      const noLoopback = await enableStreamLoopback(session.conn);
      if (noLoopback) options.log?.warn(`${noLoopback}: INSERT into a stream works from clients, but not from functions, triggers or PREPARE`);
      await service.reloadStreams(session.conn);
      await service.loadViews(session.conn, options.log);
      service.serverVersion = (await session.conn.query('SHOW server_version')).rows[0]?.[0] ?? service.serverVersion;
    });
    service.reaper = new TtlReaper(store, service.engine, service.clock, options.log, { intervalMs: options.ttlIntervalMs ?? 1000, batchSize: 10_000 });
    service.reaper.start();
    service.statsWriter = new StatsWriter(store, service.engine.stats, options.log);
    await service.statsWriter.start();
    return service;
  }

  /** Once Sluice listens: the store's stream servers point here, so SQL running in the store can INSERT into streams. */
  async listeningAt(host: string, port: number): Promise<void> {
    await withStoreSession(this.store, (session) => pointStreamServersAt(session.conn, host, port));
  }

  async reloadStreams(conn: StoreConnection): Promise<void> {
    this.engine.setStreams(await loadStreams(conn));
  }

  /**
   * Restores the catalog's views and transforms. One that cannot be loaded
   * (its plan damaged, its stream gone) does not stop the others or the
   * start: it is logged and listed in `sluice.broken_views` with the reason.
   */
  private async loadViews(conn: StoreConnection, log: Logger | undefined): Promise<void> {
    const broken: { schema: string; name: string; reason: string }[] = [];
    for (const { schema, name, plan, active } of await loadViewPlans(conn)) {
      try {
        this.engine.addView(JSON.parse(plan) as ViewPlan).active = active;
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        broken.push({ schema, name, reason });
        log?.warn({ view: `${schema}.${name}`, reason }, 'continuous view not loaded; it is listed in sluice.broken_views and not maintained');
      }
    }
    await recordBrokenViews(conn, broken);
  }

  /**
   * After DDL the store ran (DROP SCHEMA … CASCADE, DROP OWNED…): the streams
   * as they now are, and the views the catalog no longer holds (the drop
   * trigger removed them) out of the engine too.
   */
  async afterStoreDdl(conn: StoreConnection): Promise<void> {
    await this.reloadStreams(conn);
    const kept = await catalogViewNames(conn);
    for (const reader of [...this.engine.allViews(), ...this.engine.allTransforms()]) {
      if (!kept.has(streamKey(reader.plan.schema, reader.plan.name))) this.engine.removeView(reader.plan.schema, reader.plan.name);
    }
  }

  /** The context a statement runs in, on a client's session of the store. */
  context(session: StoreSession, params: readonly (string | null)[] = []): StatementContext {
    return {
      engine: this.engine,
      conn: session.conn,
      params,
      reloadStreams: () => this.reloadStreams(session.conn),
      kafka: this.kafka,
      clock: this.clock,
      catalogChanged: async () => {
        await this.kafka?.syncDeclaredStreams(session.conn);
      },
      copyIntoTable: (copy, data) => session.copyIntoTable(copy, data),
    };
  }

  async close(): Promise<void> {
    await this.reaper?.stop();
    await this.statsWriter?.stop();
    await this.store.close();
  }
}
