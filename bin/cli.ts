import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { PgliteStore } from '../connectors/postgres/index.ts';
import { SluiceService } from '../sql/index.ts';
import { WireServer } from '../sql/wire/server.ts';

const usage = `Usage: sluice [options]

  --port N            port to listen on (SLUICE_PORT, default 5490)
  --host H            address to listen on (SLUICE_HOST, default 127.0.0.1)
  --data-dir DIR      embedded PostgreSQL data directory (SLUICE_DATA_DIR, default ./sluice-data)
  --postgres-url URL  use an external PostgreSQL instead (SLUICE_POSTGRES_URL)
  --log-level LEVEL   fatal|error|warn|info|debug (SLUICE_LOG_LEVEL, default info)
  -h, --help          show this help`;

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'data-dir': { type: 'string' },
    'postgres-url': { type: 'string' },
    'log-level': { type: 'string' },
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
const log = pino({ level: values['log-level'] ?? env.SLUICE_LOG_LEVEL ?? 'info', base: undefined });

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`sluice: invalid port "${values.port ?? env.SLUICE_PORT}"\n\n${usage}`);
  process.exit(2);
}
if (postgresUrl) {
  console.error('sluice: --postgres-url (an external PostgreSQL) is not supported yet; run without it to use the embedded store.');
  process.exit(2);
}

const store = await PgliteStore.open(dataDir);
const service = await SluiceService.start(store);
const server = new WireServer(service, log);
const address = await server.listen(port, host);
log.info(
  { host: address.host, port: address.port, store: store.description, streams: service.engine.allStreams().length, views: service.engine.allViews().length },
  `Sluice listening on ${address.host}:${address.port} — connect with: psql -h ${address.host} -p ${address.port} -U sluice sluice`,
);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'Sluice stopping');
  await server.close();
  await service.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
