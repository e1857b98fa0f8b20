/** The serving store: PostgreSQL managed by Sluice (the default), an external server, or PGlite in-process. */
export { PgliteStore } from './pglite-store.ts';
export { ProtocolConnection } from './protocol-connection.ts';
export { Mutex } from './mutex.ts';
export { ExternalStore } from './external-store.ts';
export { ManagedPostgres, MANAGED_DATABASE, MANAGED_USER } from './managed-postgres.ts';
export { openManagedStore } from './managed-store.ts';
