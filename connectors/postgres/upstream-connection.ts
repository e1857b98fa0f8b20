import net from 'node:net';
import { serialize } from 'pg-protocol';
import { SqlError, SqlState } from '../../engine/errors.ts';
import type { TransactionStatus } from '../../engine/store.ts';
import { readErrorFields, type ReadErrorFields } from '../../sql/wire/backend.ts';
import { BackendFramer } from './backend-framer.ts';
import { ResponseTracker } from './response-tracker.ts';
import { Authenticator } from './upstream-auth.ts';
import type { UpstreamTarget } from './upstream-url.ts';

/** SQLSTATEs of connection trouble (class 08) that Sluice raises for the upstream. */
export const ConnectionState = {
  doesNotExist: '08003',
  unableToConnect: '08001',
  failure: '08006',
} as const;

const Backend = {
  authentication: 0x52, // R
  parameterStatus: 0x53, // S
  backendKeyData: 0x4b, // K
  readyForQuery: 0x5a, // Z
  errorResponse: 0x45, // E
  noticeResponse: 0x4e, // N
  notification: 0x41, // A
  commandComplete: 0x43, // C
  copyInResponse: 0x47, // G
  negotiateProtocolVersion: 0x76, // v
} as const;

const HEADER_LENGTH = 5;
const COPY_CHUNK = 64 * 1024;
const CLOSE_GRACE_MS = 2000;
const FLUSH = serialize.flush();
const TERMINATE = serialize.end();
const NO_COPY_IN_HERE = serialize.copyFail('COPY FROM STDIN must be sent to Sluice as a statement of its own');

/** The session settings Sluice announces to its clients, so values print the way clients were told. */
const SESSION_PARAMETERS: Record<string, string> = {
  client_encoding: 'UTF8',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  application_name: 'sluice',
};

/**
 * Sluice's defaults for the settings a session did not choose itself. PostgreSQL
 * applies startup parameters after `options`, so a default must not be sent
 * for a setting `options` names (`-c intervalstyle=…`, `--timezone=…`).
 */
function sessionDefaults(parameters: Record<string, string>): Record<string, string> {
  const named = new Set(Object.keys(parameters).map((k) => k.toLowerCase()));
  for (const match of (parameters.options ?? '').matchAll(/(?:-c\s*|--)([A-Za-z_][\w.]*)=/g)) named.add(match[1].toLowerCase().replace(/-/g, '_'));
  return Object.fromEntries(Object.entries(SESSION_PARAMETERS).filter(([name]) => !named.has(name.toLowerCase())));
}

/** Receives every backend message of the exchange in progress. */
type Reader = (buf: Buffer, start: number, end: number) => void;

interface Settle<T> {
  resolve(result: T): void;
  reject(err: unknown): void;
}

/**
 * One session of an external PostgreSQL over a raw protocol 3.0 socket.
 * Exchanges run one at a time; each knows from the messages it sent which
 * backend message ends its answer, so bytes never leak into the next one.
 */
export class UpstreamConnection {
  transactionStatus: TransactionStatus = 'I';
  processId = 0;
  secretKey = 0;
  readonly parameters = new Map<string, string>();
  /** Resolves once the socket is closed, for whatever reason. */
  readonly closed: Promise<void>;

  private readonly framer = new BackendFramer();
  private active: { read: Reader; reject: (err: unknown) => void } | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  /** Notices, notifications and parameter changes that arrived between exchanges; they go out with the next response. */
  private unsolicited: Buffer[] = [];
  /**
   * Takes notifications, notices and parameter changes that arrive while the
   * session is idle, so a client hears them at once (LISTEN) as from PostgreSQL;
   * without it they wait for the next response.
   */
  onIdleMessage: ((message: Buffer) => void) | undefined;
  /** Set once the connection is unusable; every later exchange fails with it. */
  private failure: SqlError | undefined;
  /** A FATAL ErrorResponse sent just before the server hung up (e.g. pg_terminate_backend). */
  private farewell: ReadErrorFields | undefined;
  private socketError: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly target: UpstreamTarget,
    /** A client's own session: the server's refusal (3D000, 28P01…) reaches the client in PostgreSQL's words. */
    private readonly asClient: boolean,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => {
      this.socketError ??= err;
    });
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.lose();
      resolve();
    }));
  }

  /** Connects, authenticates and waits until the server is ready for queries. */
  static async open(target: UpstreamTarget, options: { asClient?: boolean } = {}): Promise<UpstreamConnection> {
    const socket = await openSocket(target);
    const connection = new UpstreamConnection(socket, target, options.asClient ?? false);
    const onTimeout = (): void => connection.abandon(unreachable(target, `no answer to the startup message within ${target.connectTimeoutMs / 1000} s`));
    if (target.connectTimeoutMs > 0) socket.setTimeout(target.connectTimeoutMs, onTimeout);
    try {
      await connection.startup();
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
    }
    return connection;
  }

  /**
   * Sends a batch of frontend messages and returns every backend byte they
   * produce. `withHeldMessages` prepends the notices and notifications that
   * arrived while the session was idle (for a client's own requests).
   */
  forward(request: Buffer, withHeldMessages = true): Promise<Buffer> {
    const tracker = new ResponseTracker(request);
    return this.exchange<Buffer>((settle) => {
      const response = new ResponseBytes();
      if (withHeldMessages) {
        for (const message of this.unsolicited) response.add(message, 0, message.length);
        this.unsolicited = [];
      }
      this.write(tracker.needsFlush ? [request, FLUSH] : [request]);
      if (tracker.complete) settle.resolve(response.join());
      return (buf, start, end) => {
        const type = buf[start];
        if (type === Backend.copyInResponse) {
          // Sluice feeds COPY FROM STDIN itself (copyIn); a forwarded one has no data to send.
          this.write([NO_COPY_IN_HERE]);
        } else {
          response.add(buf, start, end);
        }
        if (type === Backend.readyForQuery) this.transactionStatus = readyStatus(buf, start);
        tracker.take(type);
        if (tracker.complete) settle.resolve(response.join());
      };
    });
  }

  /** Runs `COPY … FROM STDIN` with `data` as its input; returns the number of rows copied. */
  copyIn(sql: string, data: Buffer): Promise<number> {
    return this.exchange<number>((settle) => {
      let error: SqlError | undefined;
      let rows = 0;
      this.write([serialize.query(sql)]);
      return (buf, start, end) => {
        switch (buf[start]) {
          case Backend.copyInResponse:
            this.write(copyMessages(data));
            break;
          case Backend.commandComplete:
            rows = copiedRows(buf.toString('utf8', start + HEADER_LENGTH, end - 1));
            break;
          case Backend.errorResponse:
            error ??= storeError(readErrorFields(buf, start, end), sql);
            break;
          case Backend.noticeResponse:
            // The client hears it (ON_ERROR ignore's count of skipped rows), as from PostgreSQL.
            this.relay(Buffer.from(buf.subarray(start, end)));
            break;
          case Backend.readyForQuery:
            this.transactionStatus = readyStatus(buf, start);
            if (error) settle.reject(error);
            else settle.resolve(rows);
            break;
        }
      };
    });
  }

  /** True once the connection can no longer be used (closed, lost, or abandoned). */
  get broken(): boolean {
    return this.failure !== undefined;
  }

  /** Why the connection ended: the server's farewell (57P01, 25P03…) or the lost socket. */
  get endReason(): SqlError | undefined {
    return this.failure;
  }

  /** Asks the server, over a second connection, to cancel what this session is running. */
  async cancel(): Promise<void> {
    if (this.failure || this.processId === 0) return;
    const socket = await openSocket(this.target);
    await new Promise<void>((resolve) => {
      socket.on('error', () => resolve());
      // The server closes the connection once it has read the request.
      socket.on('close', () => resolve());
      socket.end(serialize.cancel(this.processId, this.secretKey));
    });
  }

  /** Says goodbye (Terminate) and closes the socket; safe to call more than once. */
  async close(): Promise<void> {
    if (!this.failure) {
      this.failure = new SqlError(ConnectionState.doesNotExist, 'the connection to the serving store is closed');
      this.socket.end(TERMINATE);
      const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      await this.closed;
      clearTimeout(timer);
    }
    await this.closed;
  }

  // ── exchanges ─────────────────────────────────────────────────────────

  /**
   * Runs exchanges one after another. `begin` writes the request and returns
   * the reader for the response; the reader settles the exchange.
   */
  private exchange<T>(begin: (settle: Settle<T>) => Reader): Promise<T> {
    const run = (): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        if (this.failure) {
          reject(this.failure);
          return;
        }
        let settled = false;
        const finish = (): boolean => {
          if (settled) return false;
          settled = true;
          this.active = undefined;
          return true;
        };
        const settle: Settle<T> = {
          resolve: (result) => {
            if (finish()) resolve(result);
          },
          reject: (err) => {
            if (finish()) reject(err);
          },
        };
        const read = begin(settle);
        if (!settled) this.active = { read, reject: settle.reject };
      });
    const result = this.tail.then(run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private write(buffers: Buffer[]): void {
    this.socket.cork();
    for (const buffer of buffers) this.socket.write(buffer);
    this.socket.uncork();
  }

  private receive(chunk: Buffer): void {
    try {
      this.framer.push(chunk, (buf, start, end) => {
        if (buf[start] === Backend.errorResponse) this.noteFatal(buf, start, end);
        else if (buf[start] === Backend.parameterStatus) this.noteParameter(buf, start, end);
        if (this.active) this.active.read(buf, start, end);
        else this.hold(buf, start, end);
      });
    } catch (err) {
      // A broken message, a failed authentication: the connection cannot go on.
      this.abandon(err instanceof SqlError ? err : new SqlError(SqlState.protocolViolation, `bad response from the serving store: ${String(err)}`));
    }
  }

  /** Gives up on the connection: the exchange in progress and every later one fail with `err`. */
  private abandon(err: SqlError): void {
    this.failure ??= err;
    this.active?.reject(this.failure);
    this.socket.destroy();
  }

  /** A message for the client outside any response: at once when someone listens, else with the next response. */
  private relay(message: Buffer): void {
    if (this.onIdleMessage) this.onIdleMessage(message);
    else this.unsolicited.push(message);
  }

  /** The session's reported settings (TimeZone, DateStyle…) as PostgreSQL announces each change. */
  private noteParameter(buf: Buffer, start: number, end: number): void {
    const [name, value] = buf.toString('utf8', start + HEADER_LENGTH, end - 1).split('\0');
    this.parameters.set(name, value ?? '');
  }

  /** A FATAL error is the server's last word before it hangs up: it says why (57P01 on shutdown or termination). */
  private noteFatal(buf: Buffer, start: number, end: number): void {
    const fields = readErrorFields(buf, start, end);
    if (fields.severity === 'FATAL' || fields.severity === 'PANIC') this.farewell = fields;
  }

  /** A message outside any exchange: keep what the client should see; anything else means we lost track. */
  private hold(buf: Buffer, start: number, end: number): void {
    const type = buf[start];
    if (type === Backend.errorResponse) return;
    if (type === Backend.noticeResponse || type === Backend.notification || type === Backend.parameterStatus) {
      this.relay(Buffer.from(buf.subarray(start, end)));
      return;
    }
    throw new SqlError(SqlState.protocolViolation, `unexpected message "${String.fromCharCode(type)}" from the serving store outside a request`);
  }

  /** The socket is gone: the exchange in progress and every later one fail. */
  private lose(): void {
    this.failure ??= this.lostError();
    this.active?.reject(this.failure);
  }

  private lostError(): SqlError {
    if (this.farewell) {
      const message = this.asClient ? this.farewell.message : `the serving store closed the connection: ${this.farewell.message}`;
      return new SqlError(this.farewell.code, message, { severity: 'FATAL', detail: this.farewell.detail, hint: this.farewell.hint });
    }
    const reason = this.socketError ? `: ${this.socketError.message}` : '';
    return new SqlError(ConnectionState.failure, `lost the connection to the serving store at ${this.target.display}${reason}`, {
      severity: 'FATAL',
      hint: 'Check that PostgreSQL is still running, then reconnect.',
    });
  }

  // ── startup ───────────────────────────────────────────────────────────

  private startup(): Promise<void> {
    const { user, database, password, display } = this.target;
    const auth = new Authenticator(user, password, display);
    return this.exchange<void>((settle) => {
      this.write([serialize.startup({ ...sessionDefaults(this.target.parameters), ...this.target.parameters, user, database })]);
      return (buf, start, end) => {
        switch (buf[start]) {
          case Backend.authentication: {
            const step = auth.respond(buf.subarray(start + HEADER_LENGTH, end));
            if (!step.done && step.reply) this.write([step.reply]);
            break;
          }
          case Backend.backendKeyData:
            this.processId = buf.readInt32BE(start + HEADER_LENGTH);
            this.secretKey = buf.readInt32BE(start + HEADER_LENGTH + 4);
            break;
          case Backend.errorResponse:
            settle.reject(this.asClient ? asTheServerSaid(readErrorFields(buf, start, end)) : refused(this.target, readErrorFields(buf, start, end)));
            break;
          case Backend.readyForQuery:
            this.transactionStatus = readyStatus(buf, start);
            settle.resolve();
            break;
        }
      };
    }).catch((err: unknown) => {
      // Losing the socket before ReadyForQuery is a failure to connect, not a lost session.
      throw err instanceof SqlError && err.code === ConnectionState.failure && !this.farewell ? startupLost(this.target, err) : err;
    });
  }
}

/** Opens the TCP (or Unix) socket, failing with a message that says what to check. */
function openSocket(target: UpstreamTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = target.socketPath ? net.connect({ path: target.socketPath }) : net.connect({ host: target.host, port: target.port });
    let connected = false;
    const onTimeout = (): void => {
      socket.destroy();
      reject(unreachable(target, `no answer within ${target.connectTimeoutMs / 1000} s`));
    };
    if (target.connectTimeoutMs > 0) socket.setTimeout(target.connectTimeoutMs, onTimeout);
    // Stays attached: an error after connecting is the connection's business, and must never go unhandled.
    socket.on('error', (err) => {
      if (!connected) reject(unreachable(target, err.message));
    });
    socket.once('connect', () => {
      connected = true;
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
      resolve(socket);
    });
  });
}

function unreachable(target: UpstreamTarget, reason: string): SqlError {
  const where = target.socketPath ?? `${target.host}:${target.port}`;
  return new SqlError(ConnectionState.unableToConnect, `could not connect to the serving store at ${target.display}: ${reason}`, {
    severity: 'FATAL',
    hint: `Is PostgreSQL running and accepting connections at ${where}? Start it (on Debian: pg_ctlcluster <version> main start) or fix --postgres-url (SLUICE_POSTGRES_URL).`,
  });
}

/** The server answered the StartupMessage with an error: bad password, unknown database or role, too many clients… */
function refused(target: UpstreamTarget, fields: ReadErrorFields): SqlError {
  return new SqlError(fields.code, `the serving store at ${target.display} refused the connection: ${fields.message}`, {
    severity: 'FATAL',
    detail: fields.detail,
    hint: fields.hint ?? refusalHint(fields.code, target),
  });
}

function asTheServerSaid(fields: ReadErrorFields): SqlError {
  return new SqlError(fields.code, fields.message, { severity: 'FATAL', detail: fields.detail, hint: fields.hint });
}

function refusalHint(code: string, target: UpstreamTarget): string {
  switch (code) {
    case '28P01':
    case '28000':
      return 'Check the user and password in --postgres-url (SLUICE_POSTGRES_URL) and the rules in pg_hba.conf.';
    case '3D000':
      return `Create the database first (createdb ${target.database}) or name an existing one in --postgres-url.`;
    default:
      return 'Check --postgres-url (SLUICE_POSTGRES_URL) and the PostgreSQL server log.';
  }
}

function startupLost(target: UpstreamTarget, err: unknown): SqlError {
  const reason = err instanceof Error ? err.message : String(err);
  return new SqlError(ConnectionState.unableToConnect, `could not connect to the serving store at ${target.display}: the server closed the connection during startup (${reason})`, {
    severity: 'FATAL',
    hint: 'Is it a PostgreSQL server (protocol 3.0)? Check --postgres-url (SLUICE_POSTGRES_URL) and the PostgreSQL server log.',
  });
}

function storeError(fields: ReadErrorFields, sql: string): SqlError {
  return new SqlError(fields.code, fields.message, { detail: fields.detail, hint: fields.hint, position: fields.position, internalQuery: sql });
}

function readyStatus(buf: Buffer, start: number): TransactionStatus {
  return String.fromCharCode(buf[start + HEADER_LENGTH]) as TransactionStatus;
}

/** The COPY tag is `COPY n`. */
function copiedRows(tag: string): number {
  const match = /^COPY (\d+)$/.exec(tag);
  return match ? Number(match[1]) : 0;
}

/** CopyData messages of at most 64 KiB each, then CopyDone; the data itself is not copied. */
function copyMessages(data: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += COPY_CHUNK) {
    const piece = data.subarray(offset, Math.min(offset + COPY_CHUNK, data.length));
    const header = Buffer.allocUnsafe(HEADER_LENGTH);
    header[0] = 0x64; // d
    header.writeInt32BE(4 + piece.length, 1);
    messages.push(header, piece);
  }
  messages.push(serialize.copyDone());
  return messages;
}

/**
 * The bytes of one response, gathered as slices of the socket's chunks;
 * consecutive messages of one chunk stay one slice, so joining copies once.
 */
class ResponseBytes {
  private readonly pieces: { buf: Buffer; start: number; end: number }[] = [];

  add(buf: Buffer, start: number, end: number): void {
    const last = this.pieces[this.pieces.length - 1];
    if (last && last.buf === buf && last.end === start) last.end = end;
    else this.pieces.push({ buf, start, end });
  }

  join(): Buffer {
    if (this.pieces.length === 1) {
      const { buf, start, end } = this.pieces[0];
      return buf.subarray(start, end);
    }
    return Buffer.concat(this.pieces.map(({ buf, start, end }) => buf.subarray(start, end)));
  }
}
