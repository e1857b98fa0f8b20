import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL server the external-store tests use (the machine's own, trust authentication). */
export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;
export const PG_ADMIN = { host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres' };

/** An admin connection to that server; fails (never skips) with how to start it. */
export async function adminClient(): Promise<pg.Client> {
  const admin = new pg.Client(PG_ADMIN);
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${PG_HOST}:${PG_PORT} as user postgres (${(err as Error).message}). ` +
        'These tests need it: start it with `pg_ctlcluster 15 main start` (trust authentication for 127.0.0.1).',
    );
  }
  return admin;
}

/** A fresh database on that server, for one test file. */
export async function createTestDatabase(): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const admin = await adminClient();
  const name = `sluice_test_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  return {
    name,
    url: `postgres://postgres@${PG_HOST}:${PG_PORT}/${name}`,
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
