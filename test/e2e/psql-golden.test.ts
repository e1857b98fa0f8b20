import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * Golden tests: each test/sql/NAME.sql is run by psql over the wire against a
 * fresh server, and its output must equal test/sql/expected/NAME.out.
 * Regenerate after an intended change with UPDATE_GOLDEN=1 npm test, then review the diff.
 */
const sqlDir = path.resolve(import.meta.dirname, '../sql');
const expectedDir = path.join(sqlDir, 'expected');

function psqlPath(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v psql'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('psql is not installed: install the PostgreSQL client (Debian: apt-get install postgresql-client)');
  }
}

/** Runs psql with `input` on stdin (the server lives in this process, so psql must not block the event loop). */
export function runPsql(port: number, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `"${psqlPath()}" -X -a -q -h 127.0.0.1 -p ${port} -U sluice -d sluice 2>&1`], {
      env: { ...process.env, PGTZ: 'UTC', PGDATESTYLE: 'ISO, MDY', PAGER: '', PSQL_PAGER: '', PGCONNECT_TIMEOUT: '10' },
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.on('error', reject);
    child.on('close', () => resolve(output));
    child.stdin.end(input);
  });
}

const cases = readdirSync(sqlDir).filter((f) => f.endsWith('.sql')).sort();

describe('psql golden files', () => {
  let sluice: RunningSluice | undefined;
  afterEach(async () => {
    await sluice?.stop({ removeData: true });
    sluice = undefined;
  });

  it('finds golden files', () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  for (const file of cases) {
    const name = file.replace(/\.sql$/, '');
    it(name, async () => {
      sluice = await startSluice();
      const output = await runPsql(sluice.port, readFileSync(path.join(sqlDir, file), 'utf8'));
      const expectedFile = path.join(expectedDir, `${name}.out`);
      if (process.env.UPDATE_GOLDEN === '1' && !process.env.CI) {
        mkdirSync(expectedDir, { recursive: true });
        writeFileSync(expectedFile, output);
      }
      if (!existsSync(expectedFile)) throw new Error(`missing ${expectedFile}: run UPDATE_GOLDEN=1 npx vitest run test/e2e/psql-golden.test.ts and review it`);
      expect(output).toBe(readFileSync(expectedFile, 'utf8'));
    });
  }
});
