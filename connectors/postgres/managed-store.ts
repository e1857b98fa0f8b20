import type { Logger } from 'pino';
import { ExternalStore } from './external-store.ts';
import { ManagedPostgres } from './managed-postgres.ts';

/**
 * The default serving store: a PostgreSQL server Sluice runs itself in
 * `<dataDir>/pg`, reached over a Unix socket only Sluice uses, and stopped
 * when the store closes.
 */
export async function openManagedStore(dataDir: string, log: Logger): Promise<{ store: ExternalStore; server: ManagedPostgres }> {
  const server = await ManagedPostgres.open({ dataDir, log });
  const store = new ExternalStore(server.target, () => server.stop());
  return { store, server };
}
