/** The serving store: PostgreSQL, embedded (PGlite) or external. */
export { PgliteStore } from './pglite-store.ts';
export { ProtocolConnection } from './protocol-connection.ts';
export { Mutex } from './mutex.ts';
export { ExternalStore } from './external-store.ts';
