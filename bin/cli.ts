import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { SqlError } from '../engine/errors.ts';
import type { ServingStore } from '../engine/store.ts';
import { ExternalStore, PgliteStore, openManagedStore } from '../connectors/postgres/index.ts';
import { KafkaConnector, createKafkaClient } from '../connectors/kafka/index.ts';
import { SluiceService } from '../sql/index.ts';
import { WireServer } from '../sql/wire/server.ts';
import { selfSignedTls, serverTlsContext } from '../sql/wire/tls.ts';
import { OpsServer } from '../sql/http/ops-server.ts';

const usage = `Usage: sluice [options]

  --port N            port to listen on (SLUICE_PORT, default 5490)
  --host H            address to listen on (SLUICE_HOST, default 127.0.0.1)
  --data-dir DIR      data directory; the managed PostgreSQL lives in DIR/pg (SLUICE_DATA_DIR, default ./sluice-data)
  --postgres-url URL  use an existing PostgreSQL instead of the managed one (SLUICE_POSTGRES_URL)
  --store KIND        managed (default: a PostgreSQL server Sluice runs itself) or pglite
                      (one in-process backend shared by every client; see the README) (SLUICE_STORE)
  --tls-cert FILE     PEM certificate: clients asking for TLS (sslmode=require…) get it (SLUICE_TLS_CERT)
  --tls-key FILE      its PEM private key (SLUICE_TLS_KEY)
  --tls-generate      use a self-signed certificate for localhost, made once in DIR/tls
  --http-port N       port of /metrics (Prometheus), /healthz and /readyz; 'off' for none (SLUICE_HTTP_PORT, default 5491)
  --log-level LEVEL   fatal|error|warn|info|debug (SLUICE_LOG_LEVEL, default info)
  -h, --help          show this help`;

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'data-dir': { type: 'string' },
    'postgres-url': { type: 'string' },
    store: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-generate': { type: 'boolean' },
    'log-level': { type: 'string' },
    'http-port': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(usage);
  process.exit(0);
}

const env = process.env;
const port = Number(values.port ?? env.SLUICE_PORT ?? 5490);
const host = values.host ?? env.SLUICE_HOST ?? '127.0.0.1';
const dataDir = values['data-dir'] ?? env.SLUICE_DATA_DIR ?? './sluice-data';
const postgresUrl = values['postgres-url'] ?? env.SLUICE_POSTGRES_URL;
const storeKind = values.store ?? env.SLUICE_STORE ?? 'managed';
const log = pino({ level: values['log-level'] ?? env.SLUICE_LOG_LEVEL ?? 'info', base: undefined });

const httpPortOption = values['http-port'] ?? env.SLUICE_HTTP_PORT ?? '5491';
const httpPort = httpPortOption === 'off' ? undefined : Number(httpPortOption);
if (httpPort !== undefined && (!Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535)) {
  console.error(`sluice: invalid --http-port "${httpPortOption}": a port number or off\n\n${usage}`);
  process.exit(2);
}
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`sluice: invalid port "${values.port ?? env.SLUICE_PORT}"\n\n${usage}`);
  process.exit(2);
}
if (storeKind !== 'managed' && storeKind !== 'pglite') {
  console.error(`sluice: invalid --store "${storeKind}": managed or pglite\n\n${usage}`);
  process.exit(2);
}

/** Startup failures a user can fix (bad URL, PostgreSQL down, wrong password) end with a message, not a stack trace. */
async function startOrExplain<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    console.error(`sluice: ${err.message}${err.detail ? `\n  ${err.detail}` : ''}${err.hint ? `\n  ${err.hint}` : ''}`);
    process.exit(1);
  }
}

async function openStore(): Promise<ServingStore> {
  if (postgresUrl) return new ExternalStore(postgresUrl);
  if (storeKind === 'pglite') return PgliteStore.open(dataDir);
  return (await openManagedStore(dataDir, log)).store;
}

const store: ServingStore = await startOrExplain(openStore);
const service = await startOrExplain(() => SluiceService.start(store, { log }));
const kafka = new KafkaConnector(store, service.engine, createKafkaClient, log);
service.kafka = kafka;
await kafka.start();
const tlsCert = values['tls-cert'] ?? env.SLUICE_TLS_CERT;
const tlsKey = values['tls-key'] ?? env.SLUICE_TLS_KEY;
if ((tlsCert === undefined) !== (tlsKey === undefined)) {
  console.error(`sluice: --tls-cert and --tls-key go together\n\n${usage}`);
  process.exit(2);
}
const tls = await startOrExplain(async () => {
  const files = tlsCert && tlsKey ? { cert: tlsCert, key: tlsKey } : values['tls-generate'] ? selfSignedTls(dataDir) : undefined;
  return files ? { files, context: serverTlsContext(files) } : undefined;
});
const server = new WireServer(service, log, tls?.context);
const address = await server.listen(port, host);
await service.listeningAt(address.host, address.port);
const ops = httpPort === undefined ? undefined : new OpsServer(store, service.engine.stats, log);
const opsAddress = await ops?.listen(httpPort as number, host).catch((err: Error) => {
  // The pipeline runs without it: say so, and how to move it.
  log.warn({ err, port: httpPort }, 'cannot serve /metrics, /healthz and /readyz on this port (--http-port N, or off)');
  return undefined;
});
log.info(
  { host: address.host, port: address.port, httpPort: opsAddress?.port, store: store.description, tls: tls?.files.cert ?? false, streams: service.engine.allStreams().length, views: service.engine.allViews().length },
  `Sluice listening on ${address.host}:${address.port} — connect with: psql -h ${address.host} -p ${address.port} -U sluice sluice`,
);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'Sluice stopping');
  await server.close();
  await ops?.close();
  await kafka.stop();
  await service.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
