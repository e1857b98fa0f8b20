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
  /**
   * Runs one statement and returns text results. Parameters are text, or
   * Buffers in binary format for the given parameter type OIDs.
   */
  query(sql: string, params?: readonly (string | Buffer | null)[], types?: readonly number[]): Promise<QueryResult>;
  /** Runs one or more statements without parameters. */
  exec(sql: string): Promise<void>;
  /** Transaction status after the last statement. */
  readonly transactionStatus: TransactionStatus;
  /** A setting PostgreSQL reports to clients (TimeZone, DateStyle…) as it is now in this session, where known. */
  reportedSetting?(name: string): string | undefined;
}

/**
 * Runs `work` atomically. Outside a transaction block it is wrapped in
 * BEGIN/COMMIT; inside the client's own block it becomes part of it, so the
 * client's COMMIT or ROLLBACK decides (as PostgreSQL would for a trigger).
 */
export async function inTransaction<T>(conn: StoreConnection, work: () => Promise<T>): Promise<T> {
  if (conn.transactionStatus !== 'I') return work();
  await conn.exec('BEGIN');
  let result: T;
  try {
    result = await work();
  } catch (err) {
    await conn.exec('ROLLBACK').finally(() => transactionEnded(conn, false));
    throw err;
  }
  try {
    await conn.exec('COMMIT');
  } catch (err) {
    transactionEnded(conn, false);
    throw err;
  }
  transactionEnded(conn, true);
  return result;
}

/** Told how the transaction it was registered in ended (see `whenTransactionEnds`). */
export interface TransactionListener {
  /** The transaction's top-level id (xid8 as text), so its outcome can be asked of the store. */
  readonly xid: string;
  ended(committed: boolean): void;
}

const transactionListeners = new WeakMap<StoreConnection, TransactionListener[]>();

/**
 * Calls `listener` once the transaction now open on `conn` ends: at once
 * when Sluice itself commits or rolls back (`inTransaction`), or when the
 * client's own block ends and `settleTransaction` is called.
 */
export function whenTransactionEnds(conn: StoreConnection, listener: TransactionListener): void {
  const listeners = transactionListeners.get(conn);
  if (listeners) listeners.push(listener);
  else transactionListeners.set(conn, [listener]);
}

/** Whether something waits for the end of the transaction on `conn`. */
export function awaitsTransactionEnd(conn: StoreConnection): boolean {
  return transactionListeners.has(conn);
}

function transactionEnded(conn: StoreConnection, committed: boolean): void {
  const listeners = transactionListeners.get(conn);
  if (!listeners) return;
  transactionListeners.delete(conn);
  for (const listener of listeners) listener.ended(committed);
}

/**
 * After a client's statement left its session idle: tells the listeners of
 * the transaction that ended whether it committed. The store says so
 * (pg_xact_status), whatever ended it: COMMIT, ROLLBACK, an error, END.
 */
export async function settleTransaction(conn: StoreConnection): Promise<void> {
  const listeners = transactionListeners.get(conn);
  if (!listeners || conn.transactionStatus !== 'I') return;
  transactionListeners.delete(conn);
  const xids = [...new Set(listeners.map((l) => l.xid))];
  const result = await conn.query('SELECT x::text, pg_xact_status(x) FROM unnest($1::xid8[]) AS x', [`{${xids.join(',')}}`]);
  const committed = new Set(result.rows.filter(([, status]) => status === 'committed').map(([x]) => x));
  for (const listener of listeners) listener.ended(committed.has(listener.xid));
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

/** A `COPY … FROM STDIN` into an ordinary table, in the two spellings stores need. */
export interface TableCopy {
  /** The statement as the client sent it (`FROM STDIN`). */
  fromStdin: string;
  /** The same statement reading `'/dev/blob'` (PGlite's bulk-load path). */
  fromBlob: string;
}

/**
 * A client's turn on the serving store. The wire layer forwards the client's
 * own protocol messages through it; Sluice's statements use `conn`.
 */
export interface StoreSession {
  readonly conn: StoreConnection;
  /** Forwards frontend protocol bytes and returns the backend's response bytes. */
  forward(request: Buffer): Promise<Buffer>;
  /** Loads `data` (COPY text/CSV bytes) into a table; returns the row count. */
  copyIntoTable(copy: TableCopy, data: Buffer): Promise<number>;
  /** Ends the turn (other clients of a shared backend may go on). */
  release(): void;
}

/** What a client asked for in its StartupMessage, for a session of its own. */
export interface ClientStartup {
  /** The database the client named. */
  database?: string;
  /** Every other startup parameter (options, application_name, TimeZone, DateStyle…), passed on as sent. */
  parameters: Record<string, string>;
}

/** One client's line to the serving store, for the life of its connection. */
export interface StoreClient {
  /**
   * True when several clients share one backend session (PGlite), so the
   * names of their prepared statements and portals must be kept apart.
   */
  readonly shared: boolean;
  /** The backend's own process id and cancel key, when the session is a backend of its own. */
  readonly backend?: { processId: number; secretKey: number; parameters: ReadonlyMap<string, string>; database: string };
  /** True once the session is gone (the server restarted, the connection broke): open a new client. */
  readonly broken: boolean;
  /** Hands over what the backend sends while idle (NOTIFY, notices), for the client to hear at once. */
  onIdleMessage?(listener: (message: Buffer) => void): void;
  /** Settles when the session ends, with why (the server's own FATAL error where it sent one). */
  readonly lost?: Promise<Error | undefined>;
  /** Waits for this client's turn and returns the session for it. */
  acquire(): Promise<StoreSession>;
  /** Asks the store to cancel this client's running statement, where it can. */
  cancel(): Promise<void>;
  close(): Promise<void>;
}

export interface ServingStore {
  /** Opens a client's line to the store: a session of its own where the store has sessions. */
  connect(startup?: ClientStartup, purpose?: string): Promise<StoreClient>;
  /** The database Sluice's catalog lives in (a client naming another one only reaches PostgreSQL). */
  readonly database: string;
  /** A one-line description for logs (`PGlite in ./sluice-data`). */
  readonly description: string;
  close(): Promise<void>;
}

/** Runs `work` on a short-lived client of the store (startup, background work). */
export async function withStoreSession<T>(store: ServingStore, work: (session: StoreSession) => Promise<T>): Promise<T> {
  const client = await store.connect(undefined, 'sluice');
  const session = await client.acquire();
  try {
    return await work(session);
  } finally {
    session.release();
    await client.close();
  }
}

/**
 * A long-lived line to the store for background work (a Kafka source, a sink
 * relay, the reaper): connects on first use and again after the session broke,
 * so a restart of the store costs a retry, never the worker.
 */
export class BackgroundSession {
  private client: StoreClient | undefined;
  /** One connect at a time: callers arriving meanwhile share it (a metrics scrape runs several at once). */
  private connecting: Promise<StoreClient> | undefined;
  private closed = false;

  constructor(
    private readonly store: ServingStore,
    /** Shown as application_name in pg_stat_activity. */
    private readonly purpose: string,
  ) {}

  async run<T>(work: (session: StoreSession) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error(`${this.purpose}: closed`);
    if (this.client?.broken) {
      const old = this.client;
      this.client = undefined;
      await old.close().catch(() => undefined);
    }
    if (!this.client) {
      this.connecting ??= this.store.connect(undefined, this.purpose).finally(() => (this.connecting = undefined));
      const client = await this.connecting;
      if (this.closed) {
        await client.close().catch(() => undefined);
        throw new Error(`${this.purpose}: closed`);
      }
      this.client ??= client;
    }
    const session = await this.client.acquire();
    try {
      return await work(session);
    } finally {
      session.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    await client?.close();
  }
}
