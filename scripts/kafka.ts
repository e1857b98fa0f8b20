/**
 * `npm run kafka [-- --port N] [--version V] [--keep-data]`: a local Apache Kafka broker for development
 * (single-node KRaft on 127.0.0.1, fresh log dir, jars fetched once from Maven Central into ~/.cache/sluice).
 * Ctrl-C (SIGINT) or SIGTERM stops it cleanly. KAFKA_VERSION picks the version, like the tests.
 * `--fetch` only downloads the jars into the cache (e.g. a CI step before the tests) and prints where they are.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureKafka, kafkaVersion, startKafka, type KafkaBroker } from '../test/support/kafka.ts';

const usage = 'usage: npm run kafka [-- --port N] [--version X.Y.Z] [--keep-data] [--verbose] | [-- --fetch [--version X.Y.Z]]';

let values: { port?: string; version?: string; 'keep-data'?: boolean; verbose?: boolean; fetch?: boolean; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', short: 'p' },
      version: { type: 'string' },
      'keep-data': { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
      fetch: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (e) {
  console.error(`${(e as Error).message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
if (values.fetch) {
  try {
    const version = kafkaVersion(values.version);
    console.log(`Kafka ${version} jars in ${await ensureKafka(version, (line) => console.error(line))}`);
    process.exit(0);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
const port = values.port === undefined ? 9092 : Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`--port must be a TCP port number, got '${values.port}'\n${usage}`);
  process.exit(2);
}

let broker: KafkaBroker | undefined;
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Still starting (or downloading): just go; the support module's exit hook kills the JVM and removes its dir.
  if (!broker) process.exit(130);
  if (values.verbose) console.error(`${signal}: stopping Kafka ...`);
  try {
    await broker.stop({ removeData: !values['keep-data'] });
    if (values['keep-data']) console.error(`Kafka data kept in ${broker.logDir}`);
    process.exit(0);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

try {
  broker = await startKafka({
    port,
    version: values.version,
    ignoreEnvBrokers: true,
    keepData: values['keep-data'],
    // The first run downloads the jars: say so, otherwise stay quiet unless --verbose.
    log: (line) => {
      if (values.verbose || line.startsWith('Download')) console.error(line);
    },
    onUnexpectedExit: (code, signal) => {
      // During start-up startKafka() itself fails with the broker's log; afterwards, say what happened here.
      if (stopping || !broker) return;
      console.error(`Kafka exited unexpectedly (${signal ?? `exit code ${code}`}).`);
      const log = path.join(path.dirname(broker.logDir), 'server.log');
      try {
        console.error(`--- ${log} (last 30 lines) ---\n${readFileSync(log, 'utf8').trimEnd().split('\n').slice(-30).join('\n')}`);
      } catch {
        // no log
      }
      process.exit(1);
    },
  });
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
console.log(`Kafka ${broker.version} listening on ${broker.brokers} (Ctrl-C to stop)`);
