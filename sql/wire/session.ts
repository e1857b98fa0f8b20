import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { SqlError, SqlState } from '../../engine/errors.ts';
import type { Subscription } from '../../engine/change-feed.ts';
import { awaitsTransactionEnd, settleTransaction, type StoreClient, type StoreSession } from '../../engine/store.ts';
import type { StatementContext, StatementResult } from '../context.ts';
import { startCopyIn, type CopySink } from '../copy-in.ts';
import { parseQuery, type ParsedQuery, type ParsedStatement } from '../parser.ts';
import { plainlyForStore, routeStatement, type Route } from '../router.ts';
import type { SluiceService } from '../service.ts';
import * as codec from './codec.ts';
import type { BindMessage, CloseMessage, DescribeMessage, ExecuteMessage, FrontendMessage, ParseMessage, StartupMessage } from './codec.ts';
import { parameterTexts } from './params.ts';
import { loopbackApplicationName } from '../stream-loopback.ts';
import { copyLine, openSubscription, parseSubscription, subscriptionValues, type OpenedSubscription, type SubscriptionStatement } from '../subscribe.ts';
import { backendName, renameAfterKind, renameBind, renameFirst } from './rename.ts';
import type { Logger } from 'pino';
import { serialize } from 'pg-protocol';

/** A prepared statement Sluice runs itself (the others live in the serving store). */
interface SluiceStatement {
  statement?: ParsedStatement;
  route: Extract<Route, { kind: 'sluice' }>;
  paramTypes: number[];
}

interface SluicePortal {
  prepared: SluiceStatement;
  params: (string | null)[];
}

export interface SessionRegistry {
  register(session: ClientSession): void;
  unregister(session: ClientSession): void;
  cancel(processId: number, secretKey: number): void;
}

let nextProcessId = 1000;

/**
 * One client connection: speaks the PostgreSQL protocol, runs the statements
 * Sluice owns, and forwards the rest to the serving store. The client holds
 * the store from its first message until it is idle outside a transaction
 * block, so clients sharing one embedded backend never see each other's
 * unnamed statements, portals or transactions; named ones are renamed.
 */
export class ClientSession {
  /** The client's backend pid and cancel key: its own PostgreSQL backend's, where it has one. */
  processId = nextProcessId++;
  secretKey = (Math.random() * 0x7fffffff) | 0;
  /** Connected to a database other than Sluice's: every message goes to PostgreSQL as it is. */
  private passthrough = false;
  /** The store's own connection back to Sluice (postgres_fdw writing into a stream from SQL in the store). */
  private loopback = false;
  private readonly parser = new codec.FrontendParser();
  private readonly namePrefix = `sluice${this.processId}_`;
  private queue: Promise<void> = Promise.resolve();
  private client: StoreClient | undefined;
  private store: StoreSession | undefined;
  private skipUntilSync = false;
  private readonly statements = new Map<string, SluiceStatement>();
  private readonly portals = new Map<string, SluicePortal>();
  private readonly storeStatements = new Set<string>();
  private copy: { sink: CopySink; done: (error?: unknown) => void; failed?: unknown } | undefined;
  private earlyCopyMessages: FrontendMessage[] = [];
  private closed = false;
  /** Subscription cursors (DECLARE … CURSOR FOR SUBSCRIBE), until their transaction ends. */
  private readonly cursors = new Map<string, OpenedSubscription>();
  /** The subscription being streamed to the client (SUBSCRIBE, COPY (SUBSCRIBE …) TO STDOUT). */
  private streaming: Subscription | undefined;
  /** Aborted by a cancel: a FETCH waiting for a subscription's rows. */
  private waiting: AbortController | undefined;
  /** The `sluice_<view>_changes` channels this client LISTENs on. */
  private readonly listening = new Set<string>();
  /** Resolves once the connection is closed and the store given back. */
  readonly finished: Promise<void>;

  /** Where the client's bytes come from and go to: the TCP socket, or the TLS socket over it. */
  private socket: Socket;
  private readonly onData = (chunk: Buffer): void => this.receive(chunk);

  constructor(
    socket: Socket,
    private readonly service: SluiceService,
    private readonly registry: SessionRegistry,
    private readonly log: Logger,
    /** Present when the server has a certificate: SSLRequest is answered with TLS. */
    private readonly tls?: SecureContext,
  ) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    this.finished = new Promise((resolve) => socket.on('close', () => void this.cleanup().catch((err) => this.log.warn({ err }, 'cleanup after disconnect failed')).finally(resolve)));
    socket.on('error', (err) => this.log.debug({ err }, 'client socket error'));
  }

  /**
   * CancelRequest from another connection: stops a COPY in progress and asks
   * the store to cancel; a SUBSCRIBE or a FETCH waiting for its rows runs in
   * Sluice alone, and a cancel sent on to the store would land on whatever
   * the client runs next.
   */
  cancel(): void {
    const inSluiceOnly = this.streaming !== undefined || this.waiting !== undefined;
    this.copy?.done(new SqlError(SqlState.queryCanceled, 'canceling statement due to user request'));
    this.streaming?.end(new SqlError(SqlState.queryCanceled, 'canceling statement due to user request'));
    this.waiting?.abort();
    if (!inSluiceOnly) void this.client?.cancel().catch((err) => this.log.debug({ err }, 'cancel failed'));
  }

  private receive(chunk: Buffer): void {
    let messages: FrontendMessage[];
    try {
      messages = this.parser.feed(chunk);
    } catch (err) {
      this.fatal(err);
      return;
    }
    for (const message of messages) {
      if (message.type === 'copyData' || message.type === 'copyDone' || message.type === 'copyFail') {
        // COPY data may arrive before the COPY statement has been started: keep it for it.
        if (this.copy) this.onCopyMessage(message);
        else this.earlyCopyMessages.push(message);
        continue;
      }
      this.queue = this.queue.then(() => this.handle(message)).catch((err) => this.fatal(err));
    }
  }

  private write(data: Buffer | Buffer[]): void {
    if (this.closed) return;
    if (Array.isArray(data)) {
      this.socket.cork();
      for (const d of data) this.socket.write(d);
      this.socket.uncork();
    } else {
      this.socket.write(data);
    }
  }

  private fatal(err: unknown): void {
    this.log.debug({ err }, 'closing client connection after protocol error');
    const fields = codec.errorFieldsFrom(err);
    this.write(codec.errorResponse({ ...fields, severity: 'FATAL', code: err instanceof SqlError ? err.code : SqlState.protocolViolation }));
    this.socket.end();
    this.closed = true;
  }

  private async handle(message: FrontendMessage): Promise<void> {
    if (this.closed) return;
    if (this.skipUntilSync && message.type !== 'sync') return;
    switch (message.type) {
      case 'sslRequest':
        return this.negotiateTls();
      case 'gssEncRequest':
        this.write(Buffer.from('N'));
        return;
      case 'startup':
        return this.startup(message);
      case 'cancelRequest':
        this.registry.cancel(message.processId, message.secretKey);
        this.socket.end();
        this.closed = true;
        return;
      case 'query':
        return this.simpleQuery(message.sql);
      case 'parse':
        return this.extended(() => this.parse(message));
      case 'bind':
        return this.extended(() => this.bind(message));
      case 'describe':
        return this.extended(() => this.describe(message));
      case 'execute':
        return this.extended(() => this.execute(message));
      case 'close':
        return this.extended(() => this.close(message));
      case 'sync':
        return this.sync();
      case 'flush':
        return this.flush();
      case 'terminate':
        this.socket.end();
        this.closed = true;
        return;
      case 'copyData':
      case 'copyDone':
      case 'copyFail':
        return; // stray copy messages outside COPY are ignored, as PostgreSQL does
      case 'malformed':
        throw message.error;
      case 'password':
        return;
      default:
        throw new SqlError(SqlState.protocolViolation, `unsupported frontend message type "${message.type === 'unknown' ? message.code : message.type}"`);
    }
  }

  /**
   * Answers SSLRequest: 'S' and a TLS handshake when the server has a
   * certificate, 'N' otherwise (the client may go on in the clear). Bytes sent
   * after the request but before the handshake are refused (CVE-2021-23214).
   */
  private negotiateTls(): void {
    if (!this.tls || this.socket instanceof TLSSocket) {
      this.write(Buffer.from('N'));
      return;
    }
    if (this.parser.bufferedLength > 0) throw new SqlError(SqlState.protocolViolation, 'received unencrypted data after SSL request');
    const plain = this.socket;
    plain.off('data', this.onData);
    plain.write(Buffer.from('S'));
    const secure = new TLSSocket(plain, { isServer: true, secureContext: this.tls });
    secure.on('data', this.onData);
    secure.on('error', (err) => {
      this.log.debug({ err }, 'TLS handshake or connection failed');
      plain.destroy();
    });
    this.socket = secure;
  }

  /**
   * Opens the client's own session of the store with the parameters it sent
   * (database, options, TimeZone…) and answers with that session's identity
   * and settings; a refusal (3D000 for a database that does not exist) is the
   * server's own FATAL error.
   */
  private async startup(message: StartupMessage): Promise<void> {
    const params = message.parameters;
    const store = this.service.store;
    try {
      this.client = await store.connect({ database: params.database, parameters: params });
    } catch (err) {
      this.fatal(err);
      return;
    }
    const backend = this.client.backend;
    let status: [string, string][];
    if (backend) {
      this.processId = backend.processId;
      this.secretKey = backend.secretKey;
      this.passthrough = backend.database !== store.database;
      status = [...backend.parameters];
    } else {
      status = this.sharedSessionStatus(params);
    }
    this.loopback = params.application_name === loopbackApplicationName;
    this.registry.register(this);
    void this.client.lost?.then((reason) => this.sessionLost(reason));
    this.client.onIdleMessage?.((message) => this.write(message));
    this.write([
      codec.authenticationOk(),
      ...status.map(([k, v]) => codec.parameterStatus(k, v)),
      codec.backendKeyData(this.processId, this.secretKey),
      codec.readyForQuery('I'),
    ]);
    this.log.debug({ user: params.user, database: params.database, processId: this.processId }, 'client connected');
  }

  /**
   * The client's backend ended (pg_terminate_backend, idle_in_transaction_session_timeout,
   * the server restarting): the client hears the server's reason at once, as from PostgreSQL,
   * after whatever it is waiting for has been answered.
   */
  private sessionLost(reason: Error | undefined): void {
    this.queue = this.queue.then(() => {
      if (this.closed) return;
      this.fatal(reason ?? new SqlError('08006', 'the connection to the serving store was lost'));
    });
  }

  /** What a client of the shared PGlite backend is told: Sluice's fixed settings. */
  private sharedSessionStatus(params: Record<string, string>): [string, string][] {
    return [
      ['server_version', this.service.serverVersion],
      ['server_encoding', 'UTF8'],
      ['client_encoding', 'UTF8'],
      ['DateStyle', 'ISO, MDY'],
      ['IntervalStyle', 'postgres'],
      ['TimeZone', 'UTC'],
      ['integer_datetimes', 'on'],
      ['standard_conforming_strings', 'on'],
      ['is_superuser', 'on'],
      ['session_authorization', params.user ?? 'sluice'],
      ['application_name', params.application_name ?? ''],
    ];
  }

  /** Takes this client's turn on the serving store (waiting for other clients to finish theirs). */
  private async turn(): Promise<StoreSession> {
    this.client ??= await this.service.store.connect();
    this.store ??= await this.client.acquire();
    return this.store;
  }

  /**
   * After a statement: once the client's transaction has ended, its
   * subscription cursors close and the changes it made to views are
   * published to subscribers if it committed. Then the turn ends.
   */
  private async finishTurn(store: StoreSession): Promise<void> {
    if (store.conn.transactionStatus === 'I') {
      this.service.engine.changes.savepoint(store.conn, 'end');
      for (const { subscription } of this.cursors.values()) subscription.end();
      this.cursors.clear();
      if (awaitsTransactionEnd(store.conn)) await settleTransaction(store.conn).catch((err) => this.log.warn({ err }, 'could not tell whether a transaction committed; its changes are not sent to subscribers'));
    }
    this.endTurnIfIdle();
  }

  /** Ends the turn when the client is idle outside a transaction block. */
  private endTurnIfIdle(): void {
    if (this.store && this.store.conn.transactionStatus === 'I' && !this.copy) {
      this.store.release();
      this.store = undefined;
    }
  }

  private async readyForQuery(): Promise<void> {
    this.write(codec.readyForQuery(this.store?.conn.transactionStatus ?? 'I'));
    if (this.store) await this.finishTurn(this.store);
  }

  private context(store: StoreSession, params: readonly (string | null)[] = []): StatementContext {
    return this.service.context(store, params);
  }

  // ── simple query ──────────────────────────────────────────────────────

  private async simpleQuery(sql: string): Promise<void> {
    const store = await this.turn();
    if (this.loopback) {
      const kept = loopbackCommand(sql);
      if (kept === null) {
        this.write([codec.commandComplete('SET')]);
        await this.readyForQuery();
        return;
      }
      sql = kept;
    }
    if (!this.passthrough && this.deallocated(sql)) {
      this.write([codec.commandComplete('DEALLOCATE')]);
      await this.readyForQuery();
      return;
    }
    if (!this.passthrough) {
      this.watchListen(sql);
      this.watchSavepoints(store, sql);
      const own = this.subscriptionStatement(sql);
      if (own) return this.runSubscriptionStatement(store, own);
    }
    if (this.passthrough || plainlyForStore(this.service.engine, sql)) {
      this.write(await store.forward(serialize.query(sql)));
      await this.finishTurn(store);
      return;
    }
    let parsed: ParsedQuery;
    try {
      parsed = parseQuery(sql);
    } catch {
      // The store's own parser reports the syntax error exactly as PostgreSQL does.
      this.write(await store.forward(serialize.query(sql)));
      await this.finishTurn(store);
      return;
    }
    if (parsed.statements.length === 0) {
      this.write([codec.emptyQueryResponse()]);
      await this.readyForQuery();
      return;
    }
    const routes = parsed.statements.map((s) => routeStatement(this.service, s));
    if (routes.every((r) => r.kind === 'store' && r.rewritten === undefined)) {
      // The rewritten text: aliases such as DROP STREAM become PostgreSQL's spelling.
      this.write(await store.forward(serialize.query(parsed.text)));
      if (routes.some((r) => r.kind === 'store' && r.changesStreams)) await this.reloadStreams(store);
      await this.finishTurn(store);
      return;
    }
    for (let i = 0; i < parsed.statements.length; i++) {
      const ok = await this.runStatement(store, parsed.statements[i], routeStatement(this.service, parsed.statements[i]));
      if (!ok) break;
    }
    await this.readyForQuery();
  }

  /**
   * `DEALLOCATE name` of a statement Sluice prepared itself (an INSERT into a
   * stream prepared through the protocol, as postgres_fdw and drivers do):
   * forgotten here, since the store never saw it. `DEALLOCATE ALL` forgets
   * Sluice's and goes on to the store.
   */
  private deallocated(sql: string): boolean {
    const match = /^\s*DEALLOCATE\s+(?:PREPARE\s+)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*;?\s*$/i.exec(sql);
    if (!match) return false;
    const written = match[1];
    if (!written.startsWith('"') && written.toLowerCase() === 'all') {
      this.statements.clear();
      return false;
    }
    const name = written.startsWith('"') ? written.slice(1, -1).replace(/""/g, '"') : written.toLowerCase();
    return this.statements.delete(name);
  }

  // ── SUBSCRIBE ─────────────────────────────────────────────────────────

  /**
   * A SUBSCRIBE statement, or FETCH/CLOSE of one of this client's
   * subscription cursors (others are PostgreSQL's); a malformed SUBSCRIBE is
   * a statement whose run reports the error.
   */
  private subscriptionStatement(sql: string): { statement: SubscriptionStatement } | { error: unknown } | undefined {
    let statement: SubscriptionStatement | undefined;
    try {
      statement = parseSubscription(sql);
    } catch (err) {
      return /^\s*(subscribe|copy|declare)\b/i.test(sql) ? { error: err } : undefined;
    }
    if (!statement) return undefined;
    if (statement.kind === 'fetch' && !this.cursors.has(statement.cursor)) return undefined;
    if (statement.kind === 'close') {
      if (statement.cursor === undefined) {
        // CLOSE ALL: the subscriptions here, PostgreSQL's cursors there.
        for (const { subscription } of this.cursors.values()) subscription.end();
        this.cursors.clear();
        return undefined;
      }
      if (!this.cursors.has(statement.cursor)) return undefined;
    }
    return { statement };
  }

  private async runSubscriptionStatement(store: StoreSession, own: { statement: SubscriptionStatement } | { error: unknown }): Promise<void> {
    if ('statement' in own && own.statement.kind === 'subscribe') return this.streamSubscription(store, own.statement);
    try {
      if ('error' in own) throw own.error;
      this.write(resultMessages(await this.cursorStatement(store, own.statement), true));
    } catch (err) {
      await this.fail(store, err);
    }
    await this.readyForQuery();
  }

  /** DECLARE … CURSOR FOR SUBSCRIBE, FETCH and CLOSE on a subscription cursor. */
  private async cursorStatement(store: StoreSession, statement: SubscriptionStatement): Promise<StatementResult> {
    if (statement.kind === 'declare') {
      if (store.conn.transactionStatus !== 'T') throw new SqlError(SqlState.noActiveSqlTransaction, 'DECLARE CURSOR can only be used in transaction blocks');
      if (this.cursors.has(statement.cursor)) throw new SqlError(SqlState.duplicateCursor, `cursor "${statement.cursor}" already exists`);
      this.cursors.set(statement.cursor, await this.subscribe(store, statement));
      return { tag: 'DECLARE CURSOR' };
    }
    if (statement.kind === 'subscribe') throw new SqlError(SqlState.featureNotSupported, 'SUBSCRIBE here is not supported');
    const cursor = this.cursors.get(statement.cursor ?? '');
    if (!cursor) throw new SqlError(SqlState.invalidCursorName, `cursor "${statement.cursor}" does not exist`);
    if (statement.kind === 'close') {
      cursor.subscription.end();
      this.cursors.delete(statement.cursor as string);
      return { tag: 'CLOSE CURSOR' };
    }
    if (store.conn.transactionStatus === 'E') throw new SqlError('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
    if (statement.count < 0) throw new SqlError(SqlState.featureNotSupported, 'MOVE is not supported on a subscription cursor', { hint: 'FETCH its rows.' });
    const { subscription, columns } = cursor;
    const waiting = (this.waiting = new AbortController());
    try {
      await subscription.waitForRows(statement.timeoutMs, waiting.signal);
    } finally {
      this.waiting = undefined;
    }
    if (waiting.signal.aborted) throw new SqlError(SqlState.queryCanceled, 'canceling statement due to user request');
    if (subscription.ended) throw subscription.ended;
    const rows = subscription.take(statement.count).map((row) => subscriptionValues(row, columns.length - 2));
    return { tag: `FETCH ${rows.length}`, columns, rows };
  }

  /** Opens a subscription; one that falls too far behind disconnects this client, which is told why. */
  private async subscribe(store: StoreSession, statement: Extract<SubscriptionStatement, { kind: 'subscribe' | 'declare' }>): Promise<OpenedSubscription> {
    const opened = await openSubscription(this.context(store), statement.target, statement.options);
    const { subscription } = opened;
    subscription.onChange = () => {
      if (subscription.ended?.code !== SqlState.configurationLimitExceeded) return;
      this.log.warn({ view: subscription.view.name, processId: this.processId }, 'subscriber fell too far behind; disconnecting it');
      const reason = subscription.ended;
      this.queue = this.queue.then(() => {
        if (!this.closed) this.fatal(reason);
      });
    };
    return opened;
  }

  /**
   * SUBSCRIBE and COPY (SUBSCRIBE …) TO STDOUT: rows are written as they
   * commit, without end, until the client cancels, disconnects or falls too
   * far behind. A client that does not read is not written to (its rows wait,
   * up to the backlog limit), so it never slows anyone else.
   */
  private async streamSubscription(store: StoreSession, statement: Extract<SubscriptionStatement, { kind: 'subscribe' }>): Promise<void> {
    let opened: OpenedSubscription;
    try {
      opened = await this.subscribe(store, statement);
    } catch (err) {
      await this.fail(store, err);
      await this.readyForQuery();
      return;
    }
    const { subscription, columns } = opened;
    const copy = statement.copy;
    const fields = columns.length - 2;
    this.streaming = subscription;
    this.write(copy ? codec.copyOutResponse(0, new Array(columns.length).fill(0)) : codec.rowDescription(columns));
    try {
      for (;;) {
        await subscription.waitForRows();
        if (subscription.ended || this.closed) break;
        const rows = subscription.take(1000).map((row) => subscriptionValues(row, fields));
        this.write(copy ? rows.map((values) => codec.copyData(Buffer.from(copyLine(values, copy.csv)))) : rows.map((values) => codec.dataRow(values)));
        await this.drained(subscription);
      }
    } finally {
      this.streaming = undefined;
      subscription.end();
    }
    const reason = subscription.ended;
    if (this.closed || reason?.code === SqlState.configurationLimitExceeded) return;
    this.write(codec.errorResponseFrom(reason));
    await this.readyForQuery();
  }

  /** Waits while the client's socket holds more than it has read (or until the subscription ends). */
  private async drained(subscription: Subscription): Promise<void> {
    if (this.closed || this.socket.writableLength < 1 << 20) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
      const before = subscription.onChange;
      subscription.onChange = () => {
        before?.();
        if (subscription.ended) done();
      };
    });
  }

  /** Follows SAVEPOINT / ROLLBACK TO / RELEASE, so a subscriber never sees changes a savepoint undid. */
  private watchSavepoints(store: StoreSession, sql: string): void {
    if (!/savepoint|release|rollback/i.test(sql)) return;
    const feed = this.service.engine.changes;
    for (const statement of sql.split(';')) {
      const match = /^\s*(savepoint|release(?:\s+savepoint)?|rollback(?:\s+(?:work|transaction))?\s+to(?:\s+savepoint)?)\s+("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*$/i.exec(statement);
      if (!match) continue;
      const name = match[2].startsWith('"') ? match[2].slice(1, -1).replace(/""/g, '"') : match[2].toLowerCase();
      const verb = match[1].toLowerCase();
      feed.savepoint(store.conn, verb === 'savepoint' ? 'set' : verb.startsWith('release') ? 'release' : 'rollback', name);
    }
  }

  /** Keeps count of the clients listening on a view's change channel, so only followed views notify. */
  private watchListen(sql: string): void {
    if (!/listen/i.test(sql)) return;
    for (const match of sql.matchAll(/\b(un)?listen\s+("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*|\*)/gi)) {
      const written = match[2];
      const channel = written.startsWith('"') ? written.slice(1, -1).replace(/""/g, '"') : written.toLowerCase();
      if (match[1]) {
        for (const heard of channel === '*' ? [...this.listening] : [channel]) {
          if (this.listening.delete(heard)) this.service.engine.changes.listen(heard, -1);
        }
      } else if (/^sluice_.+_changes$/.test(channel) && !this.listening.has(channel)) {
        this.listening.add(channel);
        this.service.engine.changes.listen(channel, 1);
      }
    }
  }

  private async reloadStreams(store: StoreSession): Promise<void> {
    if (store.conn.transactionStatus === 'E') return;
    await this.service.afterStoreDdl(store.conn);
  }

  /** Runs one statement of a simple query; returns false when it failed. */
  private async runStatement(store: StoreSession, statement: ParsedStatement, route: Route): Promise<boolean> {
    if (route.kind === 'store') {
      const response = await store.forward(serialize.query(route.rewritten ?? statement.text));
      const spans = codec.scanBackendMessages(response);
      const last = spans[spans.length - 1];
      this.write(last?.type === 'Z' ? response.subarray(0, last.start) : response);
      if (route.changesStreams) await this.reloadStreams(store);
      return !spans.some((s) => s.type === 'E');
    }
    try {
      if (route.kind === 'copyIn') {
        this.write(await this.copyIn(store, route));
      } else {
        const result = await route.run(this.context(store));
        this.write(resultMessages(result, true));
      }
      return true;
    } catch (err) {
      await this.fail(store, err);
      return false;
    }
  }

  /** Reports an error of a statement Sluice ran; inside a transaction block the block is aborted, as in PostgreSQL. */
  private async fail(store: StoreSession, err: unknown): Promise<void> {
    if (!(err instanceof SqlError)) this.log.error({ err }, 'statement failed');
    else if (err.internalQuery) this.log.debug({ code: err.code, message: err.message, query: err.internalQuery }, 'generated statement failed');
    this.write(codec.errorResponseFrom(err));
    if (store.conn.transactionStatus === 'T') {
      await store.forward(serialize.query("DO $$ BEGIN RAISE EXCEPTION 'previous statement failed'; END $$")).catch(() => undefined);
    }
  }

  // ── COPY FROM STDIN ───────────────────────────────────────────────────

  private async copyIn(store: StoreSession, route: Extract<Route, { kind: 'copyIn' }>): Promise<Buffer> {
    const sink = startCopyIn(this.context(store), route.target);
    const finished = new Promise<unknown>((resolve) => {
      this.copy = { sink, done: resolve };
    });
    const format = sink.binary ? 1 : 0;
    this.write(codec.copyInResponse(format, new Array(sink.columnCount).fill(format)));
    const early = this.earlyCopyMessages;
    this.earlyCopyMessages = [];
    for (const message of early) this.onCopyMessage(message);
    const failure = await finished;
    const copy = this.copy;
    this.copy = undefined;
    this.socket.resume();
    if (failure !== undefined) {
      await sink.abort(failure);
      throw failure;
    }
    if (copy?.failed !== undefined) {
      await sink.abort(copy.failed);
      throw copy.failed;
    }
    const result = await sink.finish();
    const notices = (result.notices ?? []).map((message) => codec.noticeResponse({ severity: 'NOTICE', code: '00000', message }));
    return Buffer.concat([...notices, codec.commandComplete(result.tag)]);
  }

  private onCopyMessage(message: FrontendMessage): void {
    const copy = this.copy;
    if (!copy) return;
    if (message.type === 'copyData') {
      if (copy.failed !== undefined) return;
      try {
        copy.sink.write(message.data);
        if (copy.sink.backlogged) {
          this.socket.pause();
          void copy.sink.drained().then(() => this.socket.resume());
        }
      } catch (err) {
        copy.failed = err;
      }
    } else if (message.type === 'copyDone') {
      copy.done();
    } else if (message.type === 'copyFail') {
      copy.done(new SqlError(SqlState.queryCanceled, `COPY from stdin failed: ${message.message}`));
    }
  }

  // ── extended query ────────────────────────────────────────────────────

  /** Runs an extended-protocol step; after an error, everything up to Sync is skipped. */
  private async extended(step: (store: StoreSession) => Promise<void>): Promise<void> {
    const store = await this.turn();
    try {
      await step(store);
    } catch (err) {
      this.skipUntilSync = true;
      await this.fail(store, err);
    }
  }

  /**
   * Messages bound for the store are collected and sent together at Sync (or
   * Flush, or before Sluice answers a message itself, to keep replies in
   * order): one trip into the store instead of one per message.
   */
  private pending: Buffer[] = [];

  private defer(raw: Buffer): void {
    this.pending.push(raw);
  }

  /** Sends the collected messages; an ErrorResponse in the reply starts skipping until Sync. */
  private async flushPending(store: StoreSession): Promise<void> {
    if (this.pending.length === 0) return;
    const request = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [];
    const response = await store.forward(request);
    if (response.length) this.write(response);
    if (codec.scanBackendMessages(response).some((span) => span.type === 'E')) this.skipUntilSync = true;
  }

  /** Before Sluice answers a message itself: sends what is pending; false when that failed (skip until Sync). */
  private async answerInOrder(store: StoreSession): Promise<boolean> {
    await this.flushPending(store);
    return !this.skipUntilSync;
  }

  /** Names of prepared statements and portals in the store: prefixed when the backend is shared. */
  private rename = (name: string): string => (this.client?.shared === false ? name : backendName(this.namePrefix, name));

  /** A message naming a statement or portal, as the store must see it: renamed only on a shared backend. */
  private named(raw: Buffer, renamer: (raw: Buffer, rename: (name: string) => string) => Buffer): Buffer {
    return this.client?.shared === false ? raw : renamer(raw, this.rename);
  }

  private async parse(message: ParseMessage): Promise<void> {
    if (!this.passthrough && this.store) this.watchSavepoints(this.store, message.sql);
    const own = this.passthrough ? undefined : (this.watchListen(message.sql), this.subscriptionStatement(message.sql));
    if (own) {
      if (!(await this.answerInOrder(await this.turn()))) return;
      this.statements.set(message.name, { route: this.subscriptionRoute(own), paramTypes: [] });
      this.write(codec.parseComplete());
      return;
    }
    if (this.passthrough || plainlyForStore(this.service.engine, message.sql)) {
      this.statements.delete(message.name);
      if (message.name) this.storeStatements.add(message.name);
      this.defer(this.named(message.raw, renameFirst));
      return;
    }
    let parsed: ParsedQuery | undefined;
    try {
      parsed = parseQuery(message.sql);
    } catch {
      parsed = undefined; // the store reports the syntax error
    }
    const statement = parsed?.statements.length === 1 ? parsed.statements[0] : undefined;
    const route = statement ? routeStatement(this.service, statement) : undefined;
    if (statement && route?.kind === 'sluice') {
      if (!(await this.answerInOrder(await this.turn()))) return;
      const paramTypes = route.paramTypes.slice();
      message.paramTypes.forEach((oid, i) => {
        if (oid) paramTypes[i] = oid;
      });
      this.statements.set(message.name, { statement, route, paramTypes });
      this.write(codec.parseComplete());
      return;
    }
    if (route?.kind === 'copyIn') {
      if (!(await this.answerInOrder(await this.turn()))) return;
      throw new SqlError(SqlState.featureNotSupported, 'COPY FROM STDIN through the extended query protocol is not supported', { hint: 'Send COPY as a simple query.' });
    }
    this.statements.delete(message.name);
    if (message.name) this.storeStatements.add(message.name);
    const text = route?.kind === 'store' && route.rewritten ? route.rewritten : parsed?.text;
    this.defer(
      text !== undefined && text !== message.sql
        ? serialize.parse({ name: this.rename(message.name), text, types: message.paramTypes })
        : this.named(message.raw, renameFirst),
    );
    if (route?.kind === 'store' && route.changesStreams) this.pendingStreamReload = true;
  }

  private pendingStreamReload = false;

  /** A subscription statement prepared through the extended protocol (streaming needs the simple one). */
  private subscriptionRoute(own: { statement: SubscriptionStatement } | { error: unknown }): Extract<Route, { kind: 'sluice' }> {
    if ('error' in own) return { kind: 'sluice', paramTypes: [], run: async () => { throw own.error; } };
    const statement = own.statement;
    const columns = statement.kind === 'fetch' ? this.cursors.get(statement.cursor)?.columns : undefined;
    return {
      kind: 'sluice',
      paramTypes: [],
      columns,
      run: async () => {
        if (statement.kind === 'subscribe') {
          throw new SqlError(SqlState.featureNotSupported, 'SUBSCRIBE through the extended query protocol is not supported', {
            hint: 'Send it as a simple query, or use DECLARE c CURSOR FOR SUBSCRIBE … and FETCH.',
          });
        }
        return this.cursorStatement(await this.turn(), statement);
      },
    };
  }

  private async bind(message: BindMessage): Promise<void> {
    const prepared = this.statements.get(message.statement);
    if (prepared) {
      const store = await this.turn();
      if (!(await this.answerInOrder(store))) return;
      const params = await parameterTexts(store.conn, message.params, message.paramFormats, prepared.paramTypes);
      this.portals.set(message.portal, { prepared, params });
      this.write(codec.bindComplete());
      return;
    }
    this.portals.delete(message.portal);
    this.defer(this.named(message.raw, renameBind));
  }

  private async describe(message: DescribeMessage): Promise<void> {
    const prepared = message.kind === 'S' ? this.statements.get(message.name) : undefined;
    const portal = message.kind === 'P' ? this.portals.get(message.name) : undefined;
    if (prepared || portal) {
      if (!(await this.answerInOrder(await this.turn()))) return;
      const columns = (prepared ?? portal!.prepared).route.columns;
      const shape = columns ? codec.rowDescription(columns.map((c) => ({ name: c.name, typeOid: c.typeOid }))) : codec.noData();
      this.write(prepared ? [codec.parameterDescription(prepared.paramTypes), shape] : shape);
      return;
    }
    this.defer(this.named(message.raw, renameAfterKind));
  }

  private async execute(message: ExecuteMessage): Promise<void> {
    const portal = this.portals.get(message.portal);
    if (portal) {
      const store = await this.turn();
      if (!(await this.answerInOrder(store))) return;
      const result = await portal.prepared.route.run(this.context(store, portal.params));
      this.write(resultMessages(result, false));
      return;
    }
    this.defer(this.named(message.raw, renameFirst));
  }

  private async close(message: CloseMessage): Promise<void> {
    const owned = message.kind === 'S' ? this.statements.delete(message.name) : this.portals.delete(message.name);
    if (owned) {
      if (!(await this.answerInOrder(await this.turn()))) return;
      this.write(codec.closeComplete());
      return;
    }
    if (message.kind === 'S') this.storeStatements.delete(message.name);
    this.defer(this.named(message.raw, renameAfterKind));
  }

  private async flush(): Promise<void> {
    if (this.pending.length) await this.flushPending(await this.turn());
  }

  private async sync(): Promise<void> {
    const store = await this.turn();
    this.defer(serialize.sync());
    this.skipUntilSync = false;
    await this.flushPending(store);
    this.skipUntilSync = false;
    if (this.pendingStreamReload) {
      this.pendingStreamReload = false;
      await this.reloadStreams(store);
    }
    await this.finishTurn(store);
  }

  // ── end of connection ─────────────────────────────────────────────────

  /** Gives back the store: rolls back an open transaction and drops this client's prepared statements. */
  private async cleanup(): Promise<void> {
    this.closed = true;
    this.registry.unregister(this);
    this.copy?.done(new SqlError(SqlState.queryCanceled, 'client disconnected during COPY'));
    this.streaming?.end();
    this.waiting?.abort();
    for (const { subscription } of this.cursors.values()) subscription.end();
    this.cursors.clear();
    for (const channel of this.listening) this.service.engine.changes.listen(channel, -1);
    this.listening.clear();
    await this.queue.catch(() => undefined);
    if (!this.client) return;
    if (!this.store && (this.storeStatements.size === 0 || !this.client.shared)) {
      await this.client.close();
      return;
    }
    const store = await this.turn();
    try {
      if (store.conn.transactionStatus !== 'I') await store.forward(serialize.query('ROLLBACK'));
      for (const name of this.storeStatements) {
        await store.forward(Buffer.concat([serialize.close({ type: 'S', name: this.rename(name) }), serialize.sync()]));
      }
    } finally {
      store.release();
      this.store = undefined;
      await this.client.close();
    }
    this.log.debug({ processId: this.processId }, 'client disconnected');
  }
}

/**
 * What Sluice runs for postgres_fdw's session commands on the loopback
 * connection (see sql/stream-loopback.ts): its `SET search_path = pg_catalog`
 * is acknowledged without effect (null) and its REPEATABLE READ or
 * SERIALIZABLE transaction runs at READ COMMITTED; the rest as sent.
 */
function loopbackCommand(sql: string): string | null {
  if (/^\s*SET\s+search_path\s*=\s*pg_catalog\s*$/i.test(sql)) return null;
  if (/^\s*START\s+TRANSACTION\s+ISOLATION\s+LEVEL\s+(REPEATABLE\s+READ|SERIALIZABLE)\s*$/i.test(sql)) return 'START TRANSACTION';
  return sql;
}

/** The messages answering a statement Sluice ran: rows (with their description in the simple protocol) and the tag. */
function resultMessages(result: StatementResult, describe: boolean): Buffer[] {
  const messages: Buffer[] = [];
  if (result.columns && describe) messages.push(codec.rowDescription(result.columns.map((c) => ({ name: c.name, typeOid: c.typeOid }))));
  for (const row of result.rows ?? []) messages.push(codec.dataRow(row));
  messages.push(codec.commandComplete(result.tag));
  return messages;
}
