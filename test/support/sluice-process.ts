import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { seedDataDir } from './managed-template.ts';

/**
 * Sluice as its own process (the `sluice` command), for tests that kill it
 * with SIGKILL and start it again on the same data directory and port.
 */
const root = path.resolve(import.meta.dirname, '../..');

export class SluiceProcess {
  private child: ChildProcess | undefined;
  port = 0;

  constructor(
    private readonly dataDir: string,
    /** Extra environment (SLUICE_* settings). */
    private readonly env: Record<string, string> = {},
  ) {}

  async start(): Promise<void> {
    await seedDataDir(this.dataDir);
    const child = spawn(process.execPath, [path.join(root, 'bin/sluice.mjs'), '--port', String(this.port), '--data-dir', this.dataDir, '--http-port', '0'], {
      cwd: root,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let output = '';
    this.port = await new Promise<number>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        output += d;
        const match = /"port":(\d+)/.exec(output);
        if (match) resolve(Number(match[1]));
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
      child.on('exit', (code, signal) => reject(new Error(`sluice exited (${code ?? signal}) before listening: ${output}`)));
    });
  }

  kill(): void {
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async query(sql: string): Promise<pg.QueryResult> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'sluice', database: 'sluice' });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  }
}

