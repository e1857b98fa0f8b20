import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { SluiceProcess } from '../support/sluice-process.ts';
import { startSluice, tempDataDir } from '../support/sluice.ts';

const root = path.resolve(import.meta.dirname, '../..');

describe('persistence across restarts', () => {
  it('keeps streams, views and their state, and keeps counting', async () => {
    const dataDir = tempDataDir();
    let sluice = await startSluice({ dataDir });
    let client = await sluice.client();
    await client.query('CREATE STREAM clicks (url text, user_id int, latency_ms float8)');
    await client.query('CREATE VIEW per_url AS SELECT url, count(*), avg(latency_ms), max(latency_ms) FROM clicks GROUP BY url');
    await client.query('CREATE VIEW expr AS SELECT upper(url) AS u, sum(user_id * 2) FROM clicks WHERE latency_ms > 10 GROUP BY 1');
    // first_values of several values keeps its tuples in a type made for the view.
    await client.query('CREATE VIEW slowest AS SELECT url, first_values(2, -latency_ms, user_id) AS top FROM clicks GROUP BY url');
    await client.query("INSERT INTO clicks VALUES ('/a', 1, 12.5), ('/a', 2, 30), ('/b', 1, 7)");
    await sluice.stop();

    sluice = await startSluice({ dataDir });
    client = await sluice.client();
    expect((await client.query('SELECT url, count, avg, max FROM per_url ORDER BY url')).rows).toEqual([
      { url: '/a', count: '2', avg: 21.25, max: 30 },
      { url: '/b', count: '1', avg: 7, max: 7 },
    ]);
    await client.query("INSERT INTO clicks VALUES ('/a', 3, 1.25), ('/c', 4, 100)");
    expect((await client.query('SELECT url, count FROM per_url ORDER BY url')).rows).toEqual([
      { url: '/a', count: '3' },
      { url: '/b', count: '1' },
      { url: '/c', count: '1' },
    ]);
    expect((await client.query('SELECT u, sum FROM expr ORDER BY u')).rows).toEqual([
      { u: '/A', sum: '6' },
      { u: '/C', sum: '8' },
    ]);
    expect((await client.query('SELECT url, top::text FROM slowest ORDER BY url')).rows).toEqual([
      { url: '/a', top: '{"(-30,2)","(-12.5,1)"}' },
      { url: '/b', top: '{"(-7,1)"}' },
      { url: '/c', top: '{"(-100,4)"}' },
    ]);
    await client.query('DROP VIEW slowest');
    expect((await client.query("SELECT count(*)::int AS n FROM pg_type WHERE typname LIKE 'slowest%'")).rows).toEqual([{ n: 0 }]);
    await expect(client.query('SELECT * FROM clicks')).rejects.toMatchObject({ code: '42809' });
    await sluice.stop({ removeData: true });
  });
});

describe('the sluice command', () => {
  it('logs where it listens, serves psql clients, and stops cleanly on SIGTERM', async () => {
    const dataDir = tempDataDir();
    const child = spawn(process.execPath, [path.join(root, 'bin/sluice.mjs'), '--port', '0', '--data-dir', dataDir, '--http-port', '0'], { cwd: root });
    let output = '';
    const listening = new Promise<{ port: number; httpPort: number }>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        output += d;
        const match = /"port":(\d+),"httpPort":(\d+)/.exec(output);
        if (match) resolve({ port: Number(match[1]), httpPort: Number(match[2]) });
      });
      child.on('exit', (code) => reject(new Error(`sluice exited with ${code}: ${output}`)));
    });
    const { port, httpPort } = await listening;
    expect(output).toContain('connect with: psql -h 127.0.0.1 -p');
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'sluice', database: 'sluice' });
    await client.connect();
    expect((await client.query('SELECT 40 + 2 AS answer')).rows).toEqual([{ answer: 42 }]);
    await client.end();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('after kill -9, starts again at once on the same data directory; a second Sluice on a directory in use is refused', async () => {
    const dataDir = tempDataDir();
    const first = new SluiceProcess(dataDir);
    await first.start();
    await first.query('CREATE STREAM s (x int)');
    await first.query('CREATE VIEW v AS SELECT count(*) FROM s');
    await first.query('INSERT INTO s VALUES (1), (2)');
    await expect(new SluiceProcess(dataDir).start()).rejects.toThrow(/another Sluice \(pid \d+\) is using the data directory/);
    first.kill();
    const again = new SluiceProcess(dataDir);
    await again.start();
    expect((await again.query('SELECT count::int AS n FROM v')).rows).toEqual([{ n: 2 }]);
    await again.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);
});
