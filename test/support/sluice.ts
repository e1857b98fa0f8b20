import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { PgliteStore } from '../../connectors/postgres/index.ts';
import { SluiceService } from '../../sql/index.ts';
import { WireServer } from '../../sql/wire/server.ts';

/** A Sluice server running in this process on a free port, with its own data directory. */
export interface RunningSluice {
  port: number;
  dataDir: string;
  url: string;
  /** A connected node-postgres client (closed by stop()). */
  client(): Promise<pg.Client>;
  /** Stops the server; the data directory stays unless `removeData`. */
  stop(options?: { removeData?: boolean }): Promise<void>;
}

export function tempDataDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'sluice-test-'));
}

export async function startSluice(options: { dataDir?: string } = {}): Promise<RunningSluice> {
  const dataDir = options.dataDir ?? tempDataDir();
  const store = await PgliteStore.open(dataDir);
  const service = await SluiceService.start(store);
  const server = new WireServer(service, pino({ level: process.env.SLUICE_LOG_LEVEL ?? 'silent' }));
  const { port } = await server.listen(0, '127.0.0.1');
  const clients: pg.Client[] = [];
  const url = `postgres://sluice@127.0.0.1:${port}/sluice`;
  return {
    port,
    dataDir,
    url,
    async client() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      clients.push(client);
      return client;
    },
    async stop(stopOptions = {}) {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await server.close();
      await service.close();
      if (stopOptions.removeData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
