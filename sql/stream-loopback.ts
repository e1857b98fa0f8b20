import type { StoreConnection } from '../engine/store.ts';
import { quoteLiteral } from '../engine/sql-text.ts';
import { kafkaServer, streamServer } from './catalog.ts';

/**
 * INSERT into a stream from wherever SQL runs in the store (a PL/pgSQL or SQL
 * function, a DO block, a trigger on a table, PREPARE/EXECUTE, a CTE): the
 * streams' foreign-data wrapper gets postgres_fdw's handler, and its servers
 * point back at Sluice itself. PostgreSQL then sends such an INSERT to Sluice
 * over a connection of its own, as an ordinary INSERT into the stream, inside
 * a transaction postgres_fdw commits just before the writing transaction
 * commits (and rolls back with it): the views reflect the rows when the
 * writing transaction commits, and a rolled-back transaction changes nothing.
 *
 * That connection is marked (application_name), so Sluice keeps its search
 * path (postgres_fdw sets `pg_catalog`) and runs its transaction at READ
 * COMMITTED (postgres_fdw asks for REPEATABLE READ, which would fail upserts
 * that race a Kafka source with serialization errors); and it waits for a
 * lock at most `lock_timeout`, so a transaction that holds a group's row lock
 * itself and then writes to that group through SQL gets an error, not a hang.
 */
export const loopbackApplicationName = 'sluice_loopback';

/**
 * Gives the stream wrapper postgres_fdw's handler; otherwise why not (the
 * INSERTs above then stay unsupported): the store has no postgres_fdw, or
 * Sluice's role may not install it.
 */
export async function enableStreamLoopback(conn: StoreConnection): Promise<string | undefined> {
  const available = await conn.query(
    `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgres_fdw'), (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
            EXISTS (SELECT 1 FROM pg_foreign_data_wrapper WHERE fdwname = 'sluice_stream' AND fdwhandler <> 0)`,
  );
  const [present, superuser, handled] = available.rows[0];
  if (present !== 't') return "postgres_fdw is not available in the serving PostgreSQL (install PostgreSQL's contrib modules)";
  // Installing it and giving the wrapper its handler take a superuser; one may have done it before.
  if (superuser !== 't') return handled === 't' ? undefined : "Sluice's role is not a superuser, so it cannot give its streams postgres_fdw's handler";
  // The extension's install scripts replace functions they made, inside Sluice's schema: allowed here.
  await conn.exec(`
    BEGIN;
    SELECT set_config('sluice.internal_ddl', 'on', true);
    CREATE EXTENSION IF NOT EXISTS postgres_fdw SCHEMA sluice;
    ALTER FOREIGN DATA WRAPPER sluice_stream HANDLER sluice.postgres_fdw_handler NO VALIDATOR;
    DO $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_user_mappings WHERE srvname = '${streamServer}' AND usename = 'public') THEN
        CREATE USER MAPPING FOR PUBLIC SERVER ${streamServer} OPTIONS (user 'sluice', password_required 'false');
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_user_mappings WHERE srvname = '${kafkaServer}' AND usename = 'public') THEN
        CREATE USER MAPPING FOR PUBLIC SERVER ${kafkaServer} OPTIONS (user 'sluice', password_required 'false');
      END IF;
    END $$;
    COMMIT;`);
  return undefined;
}

/** Points the stream servers at the address Sluice listens on (after it started listening). */
export async function pointStreamServersAt(conn: StoreConnection, host: string, port: number): Promise<void> {
  const wanted: Record<string, string> = {
    host: loopbackHost(host),
    port: String(port),
    dbname: 'sluice',
    application_name: loopbackApplicationName,
    options: '-c lock_timeout=5s',
    // Rows of one INSERT … SELECT travel together.
    batch_size: '1000',
  };
  for (const server of [streamServer, kafkaServer]) {
    const current = await conn.query('SELECT coalesce(srvoptions, \'{}\')::text FROM pg_foreign_server WHERE srvname = $1', [server]);
    if (current.rows.length === 0) continue;
    const present = new Set((current.rows[0][0] as string).replace(/^\{|\}$/g, '').split(',').filter(Boolean).map((o) => o.replace(/^"/, '').split('=')[0]));
    const changes = Object.entries(wanted).map(([name, value]) => `${present.has(name) ? 'SET' : 'ADD'} ${name} ${quoteLiteral(value)}`);
    await conn.exec(`ALTER SERVER ${server} OPTIONS (${changes.join(', ')})`);
  }
}

/** Where the store reaches Sluice: the address it listens on, or loopback when it listens on every address. */
function loopbackHost(host: string): string {
  if (host === '0.0.0.0' || host === '' || host === '*') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}
