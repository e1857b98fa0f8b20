import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ManagedPostgres } from '../../connectors/postgres/index.ts';

/**
 * One initdb per machine for the whole suite: a stopped cluster (with the
 * `sluice` database) that every test server copies instead of running initdb.
 * Bump the version when ManagedPostgres creates clusters differently.
 */
const TEMPLATE = path.join(tmpdir(), 'sluice-pg-template-v2');

async function ensureTemplate(): Promise<string> {
  if (existsSync(path.join(TEMPLATE, 'PG_VERSION'))) return TEMPLATE;
  const work = mkdtempSync(path.join(tmpdir(), 'sluice-pg-template-build-'));
  process.env.SLUICE_PG_NO_SYNC = '1';
  try {
    const server = await ManagedPostgres.open({ dataDir: work, log: pino({ level: 'silent' }) });
    await server.stop();
  } finally {
    delete process.env.SLUICE_PG_NO_SYNC;
  }
  try {
    renameSync(path.join(work, 'pg'), TEMPLATE);
  } catch {
    // Another worker finished first: its template is as good as ours.
  }
  rmSync(work, { recursive: true, force: true });
  return TEMPLATE;
}

/** Gives `dataDir` a managed cluster copied from the template, unless it has one already. */
export async function seedDataDir(dataDir: string): Promise<void> {
  if (existsSync(path.join(dataDir, 'pg', 'PG_VERSION'))) return;
  const template = await ensureTemplate();
  mkdirSync(dataDir, { recursive: true });
  execFileSync('cp', ['-a', template, path.join(dataDir, 'pg')]);
}
