import type { ServingStore, StoreClient, StoreSession } from '../../engine/store.ts';
import { ProtocolConnection } from './protocol-connection.ts';
import { UpstreamConnection } from './upstream-connection.ts';
import { parseUpstreamUrl, type UpstreamTarget } from './upstream-url.ts';

/**
 * The external serving store: an existing PostgreSQL. Every Sluice client
 * gets a session of its own there, so clients never wait for each other
 * (beyond PostgreSQL's own locks) and their statement names cannot collide.
 */
export class ExternalStore implements ServingStore {
  readonly description: string;
  private readonly target: UpstreamTarget;
  private readonly connections = new Set<UpstreamConnection>();

  /** Throws a SqlError when the URL is malformed; connecting happens per client. */
  constructor(url: string) {
    this.target = parseUpstreamUrl(url);
    this.description = `PostgreSQL at ${this.target.display}`;
  }

  async connect(): Promise<StoreClient> {
    const upstream = await UpstreamConnection.open(this.target);
    this.connections.add(upstream);
    void upstream.closed.then(() => this.connections.delete(upstream));
    const session = sessionOn(upstream);
    return {
      shared: false,
      // The upstream session is this client's alone: its turn never ends.
      acquire: async () => session,
      cancel: () => upstream.cancel(),
      close: () => upstream.close(),
    };
  }

  /** Closes the sessions clients left open (normally none: each client closes its own). */
  async close(): Promise<void> {
    await Promise.all([...this.connections].map((upstream) => upstream.close()));
  }
}

function sessionOn(upstream: UpstreamConnection): StoreSession {
  // Sluice's own statements must not swallow notices held for the client.
  const conn = new ProtocolConnection((request) => upstream.forward(request, false));
  return {
    conn,
    forward: async (request) => {
      try {
        return await upstream.forward(request);
      } finally {
        conn.transactionStatus = upstream.transactionStatus;
      }
    },
    copyIntoTable: async (copy, data) => {
      try {
        return await upstream.copyIn(copy.fromStdin, data);
      } finally {
        conn.transactionStatus = upstream.transactionStatus;
      }
    },
    release: () => undefined,
  };
}
