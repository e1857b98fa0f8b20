import { PGlite } from '@electric-sql/pglite';
import type { ServingStore, StoreClient, StoreSession, TransactionStatus } from '../../engine/store.ts';
import { ProtocolConnection } from './protocol-connection.ts';
import { Mutex } from './mutex.ts';

/**
 * The embedded serving store: one PGlite backend in a data directory.
 * PGlite is a single PostgreSQL session, so clients take turns: a client
 * holds the backend from its first message until it is idle again (outside a
 * transaction block), and the engine's own writes wait for their turn too.
 */
export class PgliteStore implements ServingStore {
  readonly database = 'postgres';
  private readonly lock = new Mutex();
  private readonly connection: ProtocolConnection;

  private constructor(
    /** The embedded backend itself (benchmarks compare against it directly). */
    readonly db: PGlite,
    readonly description: string,
  ) {
    this.connection = new ProtocolConnection((request) => this.raw(request));
  }

  static async open(dataDir: string | undefined): Promise<PgliteStore> {
    const db = dataDir ? await PGlite.create({ dataDir }) : await PGlite.create();
    return new PgliteStore(db, dataDir ? `PGlite in ${dataDir}` : 'PGlite in memory');
  }

  async connect(): Promise<StoreClient> {
    return {
      shared: true,
      broken: false,
      acquire: () => this.acquire(),
      // A statement running inside the WASM backend cannot be interrupted.
      cancel: async () => undefined,
      close: async () => undefined,
    };
  }

  private async acquire(): Promise<StoreSession> {
    const release = await this.lock.acquire();
    const connection = this.connection;
    return {
      conn: connection,
      forward: async (request) => {
        const response = await this.raw(request);
        const status = lastReadyStatus(response);
        if (status) connection.transactionStatus = status;
        return response;
      },
      copyIntoTable: (copy, data) => this.copyFromBlob(copy.fromBlob, data),
      release,
    };
  }

  private async raw(request: Buffer): Promise<Buffer> {
    const response = await this.db.execProtocolRaw(new Uint8Array(request.buffer, request.byteOffset, request.byteLength));
    return Buffer.from(response.buffer, response.byteOffset, response.byteLength);
  }

  /** Raw `COPY … FROM STDIN` would terminate PGlite, so data goes in as a blob. */
  private async copyFromBlob(copySql: string, data: Buffer): Promise<number> {
    const result = await this.db.query(copySql, [], { blob: new Blob([new Uint8Array(data)]) });
    return result.affectedRows ?? 0;
  }

  async close(): Promise<void> {
    const release = await this.lock.acquire();
    try {
      await this.db.close();
    } finally {
      release();
    }
  }
}

/** Status of the last ReadyForQuery in a response: always the final 6 bytes when present. */
function lastReadyStatus(response: Buffer): TransactionStatus | undefined {
  const at = response.length - 6;
  if (at >= 0 && response[at] === 0x5a && response.readInt32BE(at + 1) === 5) return String.fromCharCode(response[at + 5]) as TransactionStatus;
  return undefined;
}
