import type { Engine } from '../engine/engine.ts';
import type { KafkaSources } from '../engine/sources.ts';
import type { StoreConnection, TableCopy } from '../engine/store.ts';
import type { Stream } from '../engine/stream.ts';

/** What statement handlers need: the engine, and the client's session of the serving store. */
export interface StatementContext {
  engine: Engine;
  conn: StoreConnection;
  /** Bound parameters (text format) of an extended-protocol statement. */
  params: readonly (string | null)[];
  /** Re-reads the streams from the store's catalog after DDL changed them. */
  reloadStreams(): Promise<void>;
  /** After streams or views changed: starts or stops the consumers of streams declared on SERVER kafka. */
  catalogChanged(): Promise<void>;
  /** The engine's "now" (injectable, for TTL and windows). */
  clock: () => Date;
  /** pipeline_kafka's consumers, when the server runs with Kafka support. */
  kafka: KafkaSources | undefined;
  /** Loads COPY data into an ordinary table. */
  copyIntoTable(copy: TableCopy, data: Buffer): Promise<number>;
}

/** The outcome of a statement Sluice executes itself. */
export interface StatementResult {
  /** CommandComplete tag, e.g. `INSERT 0 3`. */
  tag: string;
  /** Result columns, when the statement returns rows. */
  columns?: { name: string; typeOid: number }[];
  /** Result rows in text format. */
  rows?: (string | null)[][];
  /** NOTICE messages sent before the command completes. */
  notices?: string[];
}

/**
 * Resolves a relation name to a stream. An unqualified name is looked up in
 * `public` first, then in any schema holding a stream of that name.
 */
export function findStream(ctx: Pick<StatementContext, 'engine'>, schema: string | undefined, name: string): Stream | undefined {
  if (schema) return ctx.engine.stream(schema, name);
  return ctx.engine.stream('public', name) ?? ctx.engine.allStreams().find((s) => s.name === name);
}
