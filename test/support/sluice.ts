import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { ExternalStore, openManagedStore } from '../../connectors/postgres/index.ts';
import { seedDataDir } from './managed-template.ts';
import { KafkaConnector, createKafkaClient } from '../../connectors/kafka/index.ts';
import { SluiceService } from '../../sql/index.ts';
import { WireServer } from '../../sql/wire/server.ts';
import { serverTlsContext, type TlsFiles } from '../../sql/wire/tls.ts';
import { OpsServer } from '../../sql/http/ops-server.ts';

/** A Sluice server running in this process on a free port, with its own data directory. */
export interface RunningSluice {
  port: number;
  /** Empty when serving from an external PostgreSQL. */
  dataDir: string;
  url: string;
  /** The port of /metrics, /healthz and /readyz, when started with `http`. */
  httpPort?: number;
  /** A connected node-postgres client (closed by stop()). */
  client(): Promise<pg.Client>;
  /** Stops the server; the data directory stays unless `removeData`. */
  stop(options?: { removeData?: boolean }): Promise<void>;
}

export function tempDataDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'sluice-test-'));
}

export interface SluiceOptions {
  /** Data directory of the managed PostgreSQL (a fresh temporary one by default). */
  dataDir?: string;
  /** Serve from this external PostgreSQL instead of the embedded store. */
  postgresUrl?: string;
  /** The engine's clock (TTL, windows); the system clock by default. */
  clock?: () => Date;
  /** Serve TLS with this certificate and key (PEM files). */
  tls?: TlsFiles;
  /** Serve the operators' HTTP endpoints (on a free port). */
  http?: boolean;
}

let loggers = 0;

/**
 * Quiet by default. SLUICE_LOG_LEVEL sends the log to stdout; SLUICE_TEST_LOG_DIR
 * writes each server's log to its own file there (at debug unless a level is set),
 * for finding out afterwards why a test failed.
 */
function testLogger(): Logger {
  const dir = process.env.SLUICE_TEST_LOG_DIR;
  if (!dir) return pino({ level: process.env.SLUICE_LOG_LEVEL ?? 'silent' });
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `sluice-${process.pid}-${++loggers}.log`);
  return pino({ level: process.env.SLUICE_LOG_LEVEL ?? 'debug' }, pino.destination({ dest: file, sync: true }));
}

export async function startSluice(options: SluiceOptions = {}): Promise<RunningSluice> {
  const dataDir = options.postgresUrl ? '' : (options.dataDir ?? tempDataDir());
  const log = testLogger();
  if (dataDir) await seedDataDir(dataDir);
  const store = options.postgresUrl ? new ExternalStore(options.postgresUrl) : (await openManagedStore(dataDir, log)).store;
  const service = await SluiceService.start(store, { clock: options.clock, log });
  const kafka = new KafkaConnector(store, service.engine, createKafkaClient, log);
  service.kafka = kafka;
  await kafka.start();
  const server = new WireServer(service, log, options.tls ? serverTlsContext(options.tls) : undefined);
  const { port } = await server.listen(0, '127.0.0.1');
  await service.listeningAt('127.0.0.1', port);
  const ops = options.http ? new OpsServer(store, service.engine.stats, log) : undefined;
  const httpPort = ops ? (await ops.listen(0, '127.0.0.1')).port : undefined;
  const clients: pg.Client[] = [];
  const url = `postgres://sluice@127.0.0.1:${port}/sluice`;
  return {
    port,
    dataDir,
    url,
    httpPort,
    async client() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      clients.push(client);
      return client;
    },
    async stop(stopOptions = {}) {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await server.close();
      await ops?.close();
      await kafka.stop();
      await service.close();
      if (stopOptions.removeData && dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
