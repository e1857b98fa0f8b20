import type { ClientStartup, ServingStore, StoreClient, StoreSession } from '../../engine/store.ts';
import { ProtocolConnection } from './protocol-connection.ts';
import { UpstreamConnection } from './upstream-connection.ts';
import { parseUpstreamUrl, type UpstreamTarget } from './upstream-url.ts';

const PIPELINE_DATABASE_ALIAS = 'sluice';

/** Startup parameters that are the connection's business, not the session's. */
const NOT_SESSION_SETTINGS = new Set(['user', 'database', 'replication']);

/**
 * A serving store that is a PostgreSQL server (an existing one, or the one
 * Sluice manages). Every Sluice client gets a backend session of its own
 * there, opened with the client's own startup parameters, so settings,
 * prepared statements, cursors, cancel and timeouts are per client and
 * nobody waits for anybody beyond PostgreSQL's own locks.
 */
export class ExternalStore implements ServingStore {
  readonly description: string;
  readonly database: string;
  private readonly target: UpstreamTarget;
  private readonly connections = new Set<UpstreamConnection>();

  /** Throws a SqlError when the URL is malformed; connecting happens per client. */
  constructor(
    target: string | UpstreamTarget,
    private readonly onClose?: () => Promise<void>,
  ) {
    this.target = typeof target === 'string' ? parseUpstreamUrl(target) : target;
    this.database = this.target.database;
    this.description = typeof target === 'string' ? `PostgreSQL at ${this.target.display}` : this.target.display;
  }

  async connect(startup?: ClientStartup, purpose = 'sluice'): Promise<StoreClient> {
    const target = startup ? clientTarget(this.target, startup) : { ...this.target, parameters: { application_name: purpose, ...this.target.parameters } };
    const upstream = await UpstreamConnection.open(target, { asClient: startup !== undefined });
    this.connections.add(upstream);
    void upstream.closed.then(() => this.connections.delete(upstream));
    const session = sessionOn(upstream);
    return {
      shared: false,
      backend: { processId: upstream.processId, secretKey: upstream.secretKey, parameters: upstream.parameters, database: target.database },
      get broken() {
        return upstream.broken;
      },
      lost: upstream.closed.then(() => upstream.endReason),
      onIdleMessage: (listener) => {
        upstream.onIdleMessage = listener;
      },
      // The upstream session is this client's alone: its turn never ends.
      acquire: async () => session,
      cancel: () => upstream.cancel(),
      close: () => upstream.close(),
    };
  }

  /** Closes the sessions clients left open (normally none: each client closes its own), then the server if Sluice runs it. */
  async close(): Promise<void> {
    await Promise.all([...this.connections].map((upstream) => upstream.close()));
    await this.onClose?.();
  }
}

/**
 * The store's target with the client's database and session settings (the
 * client's win over Sluice's defaults). `sluice`, the name the quick start
 * gives, always means the database of Sluice's catalog, also when an external
 * server calls it otherwise; any other name is the server's to resolve.
 */
function clientTarget(target: UpstreamTarget, startup: ClientStartup): UpstreamTarget {
  const parameters: Record<string, string> = { ...target.parameters, application_name: '' };
  for (const [name, value] of Object.entries(startup.parameters)) {
    if (!NOT_SESSION_SETTINGS.has(name) && !name.startsWith('_pq_.')) parameters[name] = value;
  }
  const named = startup.database || startup.parameters.user;
  const database = !named || named === PIPELINE_DATABASE_ALIAS ? target.database : named;
  return { ...target, database, parameters };
}

function sessionOn(upstream: UpstreamConnection): StoreSession {
  // Sluice's own statements must not swallow notices held for the client.
  const conn = new ProtocolConnection((request) => upstream.forward(request, false), (name) => upstream.parameters.get(name));
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
