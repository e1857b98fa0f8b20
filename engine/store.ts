/**
 * What the engine needs from the serving store (a PostgreSQL). Connectors
 * implement these interfaces; the engine never imports a connector.
 */

/** Result of a statement, every value in PostgreSQL's text format. */
export interface QueryResult {
  fields: { name: string; typeOid: number }[];
  rows: (string | null)[][];
  /** The command tag, e.g. `INSERT 0 3`. */
  command: string;
}

/** `I` idle, `T` in a transaction block, `E` in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';

/** One session of the serving store; statements on it run in order. */
export interface StoreConnection {
  /** Runs one statement with text parameters and returns text results. */
  query(sql: string, params?: readonly (string | null)[]): Promise<QueryResult>;
  /** Runs one or more statements without parameters. */
  exec(sql: string): Promise<void>;
  /** Transaction status after the last statement. */
  readonly transactionStatus: TransactionStatus;
}

/**
 * Runs `work` atomically. Outside a transaction block it is wrapped in
 * BEGIN/COMMIT; inside the client's own block it becomes part of it, so the
 * client's COMMIT or ROLLBACK decides (as PostgreSQL would for a trigger).
 */
export async function inTransaction<T>(conn: StoreConnection, work: () => Promise<T>): Promise<T> {
  if (conn.transactionStatus !== 'I') return work();
  await conn.exec('BEGIN');
  try {
    const result = await work();
    await conn.exec('COMMIT');
    return result;
  } catch (err) {
    await conn.exec('ROLLBACK');
    throw err;
  }
}

/** Runs `work` and undoes whatever it did to the store (used to ask PostgreSQL about a query). */
export async function rolledBack<T>(conn: StoreConnection, work: () => Promise<T>): Promise<T> {
  const savepoint = conn.transactionStatus !== 'I';
  await conn.exec(savepoint ? 'SAVEPOINT sluice_probe' : 'BEGIN');
  try {
    return await work();
  } finally {
    await conn.exec(savepoint ? 'ROLLBACK TO SAVEPOINT sluice_probe; RELEASE SAVEPOINT sluice_probe' : 'ROLLBACK');
  }
}

/**
 * A client's exclusive turn on the serving store. The wire layer forwards the
 * client's own protocol messages through it; Sluice's statements use `conn`.
 */
export interface StoreSession {
  readonly conn: StoreConnection;
  /** Forwards frontend protocol bytes and returns the backend's response bytes. */
  forward(request: Buffer): Promise<Buffer>;
  /** Bulk-loads a table: `copySql` is a `COPY … FROM '/dev/blob'` statement. */
  copyFromBlob(copySql: string, data: Buffer): Promise<number>;
  release(): void;
}

export interface ServingStore {
  /** Waits for, then returns, a session of the store for one client's work. */
  acquire(): Promise<StoreSession>;
  /** A one-line description for logs (`PGlite in ./sluice-data`). */
  readonly description: string;
  /** The PostgreSQL version string to report to clients. */
  serverVersion(): Promise<string>;
  close(): Promise<void>;
}
