/**
 * A real Apache Kafka broker for Sluice's development and tests: single-node KRaft (broker + controller in one
 * JVM) on loopback ports, with a fresh log directory, started from the official jars on Maven Central.
 *
 *   const kafka = await startKafka();          // '127.0.0.1:PORT' in kafka.brokers
 *   ...
 *   await kafka.stop({ removeData: true });
 *
 * The jars (org.apache.kafka:kafka_2.13 and its runtime dependencies, see scripts/kafka-pom.xml) are fetched once
 * with Maven into ~/.cache/sluice/kafka-<version>/libs (SLUICE_CACHE_DIR overrides ~/.cache/sluice) and reused.
 *
 * Environment:
 *   KAFKA_VERSION    broker version (default DEFAULT_KAFKA_VERSION; 3.9.x and 4.1.x are known to work)
 *   KAFKA_BROKERS    use this already running broker instead of starting one (stop/kill/restart then throw)
 *   KAFKA_HEAP_OPTS  JVM heap flags for the broker (default -Xmx512m -Xms256m)
 *   SLUICE_CACHE_DIR where the jars are kept (default ~/.cache/sluice)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** The latest 4.1.x on Maven Central when this was written (4.1.3 did not exist yet). */
export const DEFAULT_KAFKA_VERSION = '4.1.2';

const POM = path.resolve(import.meta.dirname, '../../scripts/kafka-pom.xml');
const MARKER = '.complete';
const INSTALL_HINT =
  'Install them with `apt-get install openjdk-17-jre-headless maven` (Debian/Ubuntu, as root; run `apt-get update` first).';
const START_TIMEOUT_MS = Number(process.env.SLUICE_KAFKA_START_TIMEOUT_MS ?? 90_000);
const STOP_TIMEOUT_MS = 30_000;

export interface KafkaBroker {
  /** Bootstrap servers, '127.0.0.1:PORT'. */
  brokers: string;
  version: string;
  /** Kafka's data directory (log.dirs); kept across stop()/kill()/restart(). Empty for an external broker. */
  logDir: string;
  /** True when this points at KAFKA_BROKERS rather than a broker this process started. */
  external: boolean;
  /**
   * Clean shutdown (SIGTERM, then SIGKILL after 30 s). The data stays for restart() unless `removeData`; without
   * the `keepData` start option it is removed anyway when this process exits.
   */
  stop(options?: { removeData?: boolean }): Promise<void>;
  /** SIGKILL the broker at once (for fault tests); restart() brings it back on the same port and log dir. */
  kill(): void;
  /** Stop (if running) and start again on the same ports and log dir; resolves when it serves metadata again. */
  restart(): Promise<void>;
}

export interface StartKafkaOptions {
  version?: string;
  /** PLAINTEXT port on 127.0.0.1 (default: a free port). The controller listener always gets a free port. */
  port?: number;
  /** Start a broker of our own even when KAFKA_BROKERS is set (fault tests need one). */
  ignoreEnvBrokers?: boolean;
  /** Progress lines (downloading jars, formatting...). Default: silent. */
  log?: (line: string) => void;
  /** Keep the temp dir (config, server.log, data) when this process exits; by default it is removed then. */
  keepData?: boolean;
  /** Called when the broker process exits without stop()/kill()/restart() asking it to. */
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export function kafkaVersion(version?: string): string {
  const v = version ?? process.env.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
  if (!/^\d+\.\d+\.\d+$/.test(v)) throw new Error(`Kafka version must look like 4.1.2, got '${v}'`);
  return v;
}

export function kafkaCacheDir(version: string): string {
  const base = process.env.SLUICE_CACHE_DIR ?? path.join(homedir(), '.cache', 'sluice');
  return path.join(base, `kafka-${version}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Tools and jars

function javaBin(): string {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

/** Java's major version, or an error naming how to install it. */
function checkJava(version: string): void {
  const r = spawnSync(javaBin(), ['-version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`Kafka ${version} needs Java (17 or newer), but \`${javaBin()} -version\` failed (${r.error?.message ?? r.stderr}). ${INSTALL_HINT}`);
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.stderr);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : 0;
  const needed = Number(version.split('.')[0]) >= 4 ? 17 : 11;
  if (major && major < needed) {
    throw new Error(`Kafka ${version} needs Java ${needed} or newer, found Java ${major}. ${INSTALL_HINT}`);
  }
}

function checkMaven(): void {
  const r = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`Fetching the Kafka jars needs Maven, but \`mvn -v\` failed (${r.error?.message ?? r.stderr}). ${INSTALL_HINT}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/**
 * Returns the directory holding the broker's jars, fetching them with Maven on first use. Several processes may
 * call this at once: one downloads (under a lock directory), the others wait for its marker file.
 */
export async function ensureKafka(version: string, log: (line: string) => void = () => {}): Promise<string> {
  const dir = kafkaCacheDir(version);
  const libs = path.join(dir, 'libs');
  if (existsSync(path.join(dir, MARKER))) return libs;

  mkdirSync(path.dirname(dir), { recursive: true });
  const lock = `${dir}.lock`;
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    // Someone else is downloading; wait for them (or take over if they died).
    if (existsSync(path.join(dir, MARKER))) return libs;
    let owner = 0;
    try {
      owner = Number(readFileSync(path.join(lock, 'pid'), 'utf8'));
    } catch {
      // lock made but pid not written yet
    }
    if (owner && !pidAlive(owner)) rmSync(lock, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`Timed out waiting for another process to download Kafka ${version} (lock ${lock})`);
    await sleep(500);
  }

  try {
    if (existsSync(path.join(dir, MARKER))) return libs;
    checkMaven();
    const partial = `${dir}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    log(`Downloading Kafka ${version} (org.apache.kafka:kafka_2.13 and its dependencies) with Maven into ${dir} ...`);
    const started = Date.now();
    // -U: retry artifacts whose earlier download failed (Maven caches misses in ~/.m2 otherwise).
    const args = ['-q', '-B', '-U', '-Dstyle.color=never', '-f', POM, 'dependency:copy-dependencies', `-Dkafka.version=${version}`, `-DoutputDirectory=${path.join(partial, 'libs')}`];
    let result: { code: number | null; output: string };
    try {
      result = await run('mvn', args, 10 * 60_000);
    } catch (e) {
      throw new Error(`Could not run Maven (${(e as Error).message}). ${INSTALL_HINT}`);
    }
    if (result.code !== 0 || !existsSync(path.join(partial, 'libs', `kafka_2.13-${version}.jar`))) {
      rmSync(partial, { recursive: true, force: true });
      throw new Error(
        `Downloading Kafka ${version} from Maven Central failed (mvn ${args.join(' ')} exited ${result.code}):\n` +
          result.output.replace(/\x1b\[[0-9;]*m/g, '').trim().split('\n').slice(-30).join('\n') +
          `\nCheck that the version exists (mvn dependency:get -Dartifact=org.apache.kafka:kafka_2.13:${version}) and that Maven ` +
          `can reach Maven Central (proxy/mirror in ~/.m2/settings.xml). Java and Maven: \`apt-get install openjdk-17-jre-headless maven\`.`,
      );
    }
    writeFileSync(path.join(partial, MARKER), `kafka ${version} fetched ${new Date().toISOString()}\n`);
    rmSync(dir, { recursive: true, force: true }); // a leftover without a marker
    renameSync(partial, dir);
    log(`Downloaded Kafka ${version} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return libs;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Ports and readiness

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function freePort(avoid: number[] = []): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!avoid.includes(port)) return port;
  }
}

/**
 * Sends a Metadata v4 request (no topics) and resolves with the number of live brokers in the answer.
 * v4 is served by Kafka 1.0 through 4.x (4.0 dropped v0-v3). A broker only accepts client connections once it
 * has caught up with the metadata log, and lists only unfenced brokers, so a non-zero answer means ready.
 */
export function metadataProbe(host: string, port: number, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => fail(new Error('metadata request timed out')), timeoutMs);
    let buf = Buffer.alloc(0);
    function fail(e: Error) {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    }
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('connection closed before a metadata response')));
    socket.on('connect', () => {
      const clientId = Buffer.from('sluice-probe');
      const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length + 4 + 1);
      let o = 0;
      o = body.writeInt16BE(3, o); // api_key Metadata
      o = body.writeInt16BE(4, o); // api_version
      o = body.writeInt32BE(7, o); // correlation_id
      o = body.writeInt16BE(clientId.length, o);
      o += clientId.copy(body, o);
      o = body.writeInt32BE(0, o); // topics: empty array (none)
      body.writeInt8(0, o); // allow_auto_topic_creation
      const size = Buffer.alloc(4);
      size.writeInt32BE(body.length);
      socket.write(Buffer.concat([size, body]));
    });
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4 || buf.length < 4 + buf.readInt32BE(0)) return;
      try {
        const correlationId = buf.readInt32BE(4);
        if (correlationId !== 7) throw new Error(`unexpected correlation id ${correlationId}`);
        // throttle_time_ms at 8, brokers array count at 12
        const brokers = buf.readInt32BE(12);
        clearTimeout(timer);
        socket.removeAllListeners('close');
        socket.destroy();
        resolve(brokers);
      } catch (e) {
        fail(e as Error);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The broker process

/** Kafka's Uuid text form: 16 random bytes, base64url without padding, never starting with '-'. */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Don't leave brokers or temp dirs behind when the process ends without stop({ removeData: true })
  // (setpriv --pdeathsig covers this process being SIGKILLed).
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
    for (const dir of tempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // best effort
      }
    }
  });
}
function track(child: ChildProcess): void {
  installExitHook();
  live.add(child);
  child.once('exit', () => live.delete(child));
}

const hasSetpriv = (() => {
  const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
  return !r.error && r.status === 0 && r.stdout.includes('--pdeathsig');
})();

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function externalBroker(brokers: string, version?: string): KafkaBroker {
  const refuse = (what: string) =>
    new Error(`${what}() needs a broker started by the test, but KAFKA_BROKERS=${brokers} points at an external one (unset it, or pass ignoreEnvBrokers: true)`);
  return {
    brokers,
    version: version ?? process.env.KAFKA_VERSION ?? 'unknown',
    logDir: '',
    external: true,
    async stop() {
      throw refuse('stop');
    },
    kill() {
      throw refuse('kill');
    },
    async restart() {
      throw refuse('restart');
    },
  };
}

export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaBroker> {
  if (process.env.KAFKA_BROKERS && !options.ignoreEnvBrokers) return externalBroker(process.env.KAFKA_BROKERS, options.version);

  const version = kafkaVersion(options.version);
  const log = options.log ?? (() => {});
  checkJava(version);
  const libs = await ensureKafka(version, log);

  if (options.port !== undefined && !(await portFree(options.port))) {
    throw new Error(`Cannot start Kafka on 127.0.0.1:${options.port}: the port is in use (is another broker running?)`);
  }
  const port = options.port ?? (await freePort());
  const controllerPort = await freePort([port]);

  const workDir = mkdtempSync(path.join(tmpdir(), 'sluice-kafka-'));
  if (!options.keepData) {
    installExitHook();
    tempDirs.add(workDir);
  }
  const logDir = path.join(workDir, 'data');
  const serverLog = path.join(workDir, 'server.log');
  const config = path.join(workDir, 'server.properties');
  const log4j = path.join(workDir, 'log4j2.properties');
  writeFileSync(
    config,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      `log.dirs=${logDir}`,
      'auto.create.topics.enable=false',
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      // One partition each for the internal topics: the first consumer group / transaction is ready sooner.
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      // After kill(), the restarted broker can only re-register once the controller has timed out the old
      // incarnation's session (9 s by default): keep that short so fault tests restart quickly.
      'broker.heartbeat.interval.ms=500',
      'broker.session.timeout.ms=2000',
      '',
    ].join('\n'),
  );
  // Quiet: nothing on stdout, INFO and up into server.log (shown when start-up fails).
  writeFileSync(
    log4j,
    [
      'status = error',
      'name = sluice-kafka',
      'appender.file.type = File',
      'appender.file.name = file',
      `appender.file.fileName = ${serverLog}`,
      'appender.file.layout.type = PatternLayout',
      'appender.file.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = INFO',
      'rootLogger.appenderRef.file.ref = file',
      'logger.request.name = kafka.request.logger',
      'logger.request.level = WARN',
      'logger.state.name = state.change.logger',
      'logger.state.level = WARN',
      '',
    ].join('\n'),
  );

  const classpath = path.join(libs, '*');
  const logArgs = [`-Dlog4j2.configurationFile=${log4j}`, `-Dlog4j.configuration=file:${log4j}`, `-Dkafka.logs.dir=${workDir}`];

  // Format the storage (once; restart() reuses it).
  log(`Formatting ${logDir} ...`);
  const format = await run(
    javaBin(),
    ['-Xmx256m', '-XX:TieredStopAtLevel=1', ...logArgs, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', config, '--ignore-formatted'],
    120_000,
  );
  if (format.code !== 0) {
    throw new Error(`Formatting Kafka's storage failed (exit ${format.code}):\n${format.output.trim()}\n${tail(serverLog, 20)}`);
  }

  const heap = (process.env.KAFKA_HEAP_OPTS ?? '-Xmx512m -Xms256m').split(/\s+/).filter(Boolean);
  const jvmArgs = [
    ...heap,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:InitiatingHeapOccupancyPercent=35',
    '-XX:+ExplicitGCInvokesConcurrent',
    '-Djava.awt.headless=true',
    ...logArgs,
    '-cp',
    classpath,
    'kafka.Kafka',
    config,
  ];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let expectingExit = false;
  let output: string[] = [];

  function launch(): void {
    expectingExit = false;
    output = [];
    // setpriv --pdeathsig: the JVM gets SIGKILL if this process dies without stopping it.
    // detached: Ctrl-C in a terminal reaches only this process, which then stops the broker cleanly.
    const [cmd, args] = hasSetpriv ? ['setpriv', ['--pdeathsig', 'KILL', javaBin(), ...jvmArgs]] : [javaBin(), jvmArgs];
    const proc = spawn(cmd, args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = proc;
    track(proc);
    const keep = (chunk: Buffer) => {
      output.push(...chunk.toString().split('\n').filter(Boolean));
      if (output.length > 200) output = output.slice(-100);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        if (child === proc) child = undefined;
        if (!expectingExit) options.onUnexpectedExit?.(code, signal);
        resolve();
      });
      proc.once('error', (e) => {
        output.push(`spawn failed: ${e.message}`);
        if (child === proc) child = undefined;
        resolve();
      });
    });
  }

  async function waitReady(): Promise<void> {
    const started = Date.now();
    let lastError = 'no answer yet';
    for (;;) {
      if (!child) {
        throw new Error(
          `Kafka ${version} exited during start-up.\n--- output ---\n${output.slice(-20).join('\n')}\n--- ${serverLog} (last 40 lines) ---\n${tail(serverLog, 40)}`,
        );
      }
      try {
        const brokers = await metadataProbe('127.0.0.1', port);
        if (brokers > 0) {
          log(`Kafka ${version} ready on 127.0.0.1:${port} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
          return;
        }
        lastError = 'metadata lists no live broker yet';
      } catch (e) {
        lastError = (e as Error).message;
      }
      if (Date.now() - started > START_TIMEOUT_MS) {
        await stopProcess();
        throw new Error(
          `Kafka ${version} did not answer metadata on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s (last probe: ${lastError}).\n` +
            `--- output ---\n${output.slice(-20).join('\n')}\n--- ${serverLog} (last 40 lines) ---\n${tail(serverLog, 40)}`,
        );
      }
      await sleep(100);
    }
  }

  async function stopProcess(): Promise<void> {
    const proc = child;
    if (!proc) return exited;
    expectingExit = true;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  log(`Starting Kafka ${version} on 127.0.0.1:${port} ...`);
  launch();
  try {
    await waitReady();
  } catch (e) {
    await stopProcess();
    rmSync(workDir, { recursive: true, force: true });
    tempDirs.delete(workDir);
    throw e;
  }

  return {
    brokers: `127.0.0.1:${port}`,
    version,
    logDir,
    external: false,
    async stop(stopOptions = {}) {
      await stopProcess();
      if (stopOptions.removeData) {
        rmSync(workDir, { recursive: true, force: true });
        tempDirs.delete(workDir);
      }
    },
    kill() {
      if (!child) return;
      expectingExit = true;
      child.kill('SIGKILL');
    },
    async restart() {
      await stopProcess();
      await exited;
      launch();
      await waitReady();
    },
  };
}
