/**
 * Server side of the PostgreSQL 3.0 protocol, frontend half: turns the bytes a
 * client sends into typed messages. This is the mirror image of pg-protocol,
 * which parses backend messages and serializes frontend ones.
 */
import { SqlError, SqlState } from '../../engine/errors.ts';

/** Request codes that take the place of a protocol version in an untyped startup packet. */
export const StartupCode = {
  sslRequest: 80877103,
  gssEncRequest: 80877104,
  cancelRequest: 80877102,
  protocol3: 196608,
} as const;

/** Type bytes of the messages a client sends after startup. */
export const FrontendCode = {
  query: 0x51, // Q
  parse: 0x50, // P
  bind: 0x42, // B
  describe: 0x44, // D
  execute: 0x45, // E
  sync: 0x53, // S
  flush: 0x48, // H
  close: 0x43, // C
  terminate: 0x58, // X
  copyData: 0x64, // d
  copyDone: 0x63, // c
  copyFail: 0x66, // f
  password: 0x70, // p (also carries SASL and GSS responses)
  functionCall: 0x46, // F
} as const;

const TYPED_HEADER_LENGTH = 5;
const STARTUP_HEADER_LENGTH = 4;
const MIN_STARTUP_LENGTH = 8;
// PostgreSQL's MAX_STARTUP_PACKET_LENGTH; a larger value means garbage or an attack.
const MAX_STARTUP_LENGTH = 10000;
// PostgreSQL's PQ_LARGE_MESSAGE_LIMIT: nothing legitimate is bigger.
const MAX_TYPED_LENGTH = 0x40000000;

/** Every message keeps its exact bytes so the server can forward it verbatim. */
interface FrameBase {
  /**
   * The whole message as received (type byte included for typed messages).
   * A slice of the fed chunk or of a buffer owned by this message, never of a
   * buffer the parser reuses. Copy it if you keep it long-term: a slice pins
   * the whole socket chunk in memory.
   */
  raw: Buffer;
}

export interface SslRequestMessage extends FrameBase { type: 'sslRequest' }
export interface GssEncRequestMessage extends FrameBase { type: 'gssEncRequest' }
export interface CancelRequestMessage extends FrameBase {
  type: 'cancelRequest';
  /** Signed int32, as pg clients send it. */
  processId: number;
  /** Signed int32, as pg clients send it. */
  secretKey: number;
}
export interface StartupMessage extends FrameBase {
  type: 'startup';
  /** (major << 16) | minor, e.g. 196608 for 3.0. Any 3.x is accepted here; negotiate above. */
  protocolVersion: number;
  parameters: Record<string, string>;
}
export interface QueryMessage extends FrameBase { type: 'query'; sql: string }
export interface ParseMessage extends FrameBase {
  type: 'parse';
  name: string;
  sql: string;
  /** 0 means "let the server infer". */
  paramTypes: number[];
}
export interface BindMessage extends FrameBase {
  type: 'bind';
  portal: string;
  statement: string;
  /** Empty = all text, one entry = applies to all, else one per parameter. */
  paramFormats: number[];
  /** null is SQL NULL; buffers are slices of `raw`. */
  params: (Buffer | null)[];
  /** Same convention as paramFormats, applied to result columns. */
  resultFormats: number[];
}
export type PreparedKind = 'S' | 'P';
export interface DescribeMessage extends FrameBase { type: 'describe'; kind: PreparedKind; name: string }
export interface ExecuteMessage extends FrameBase {
  type: 'execute';
  portal: string;
  /** 0 (or negative) means no limit. */
  maxRows: number;
}
export interface SyncMessage extends FrameBase { type: 'sync' }
export interface FlushMessage extends FrameBase { type: 'flush' }
export interface CloseMessage extends FrameBase { type: 'close'; kind: PreparedKind; name: string }
export interface TerminateMessage extends FrameBase { type: 'terminate' }
export interface CopyDataMessage extends FrameBase { type: 'copyData'; data: Buffer }
export interface CopyDoneMessage extends FrameBase { type: 'copyDone' }
export interface CopyFailMessage extends FrameBase { type: 'copyFail'; message: string }
export interface PasswordMessage extends FrameBase { type: 'password'; data: Buffer }
export interface FunctionCallMessage extends FrameBase { type: 'functionCall' }
export interface UnknownMessage extends FrameBase { type: 'unknown'; code: string }
/**
 * A well-framed typed message whose body does not decode. PostgreSQL answers
 * these with an ERROR and keeps the session, so the stream stays usable.
 */
export interface MalformedMessage extends FrameBase { type: 'malformed'; code: string; error: SqlError }

export type FrontendMessage =
  | SslRequestMessage
  | GssEncRequestMessage
  | CancelRequestMessage
  | StartupMessage
  | QueryMessage
  | ParseMessage
  | BindMessage
  | DescribeMessage
  | ExecuteMessage
  | SyncMessage
  | FlushMessage
  | CloseMessage
  | TerminateMessage
  | CopyDataMessage
  | CopyDoneMessage
  | CopyFailMessage
  | PasswordMessage
  | FunctionCallMessage
  | UnknownMessage
  | MalformedMessage;

/**
 * Incremental parser for one client connection. Feed it socket chunks in
 * order; it returns every message completed by each chunk.
 *
 * Fed chunks are treated as immutable (true for net.Socket 'data' buffers):
 * messages wholly inside a chunk are returned as zero-copy slices of it, and
 * only a message that straddles chunks is assembled into a fresh buffer.
 *
 * Framing errors (a bad length, an unknown startup code) throw a SqlError:
 * the stream cannot be resynchronised, so the connection must be closed.
 */
export class FrontendParser {
  private phase: 'startup' | 'typed' = 'startup';
  /** Chunks holding the start of a not yet complete frame. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Length of the pending frame once its header has arrived. */
  private pendingFrameLength: number | undefined;

  /** True once a StartupMessage was seen and typed messages are expected. */
  get started(): boolean {
    return this.phase === 'typed';
  }

  /**
   * Bytes received but not yet part of a returned message. After an
   * SSLRequest this must be 0 before the TLS handshake (CVE-2021-23214).
   */
  get bufferedLength(): number {
    return this.pendingLength;
  }

  feed(chunk: Buffer): FrontendMessage[] {
    const messages: FrontendMessage[] = [];
    const rest = this.pendingLength > 0 ? this.completePendingFrame(chunk, messages) : chunk;
    if (rest !== undefined) this.parseWholeFrames(rest, messages);
    return messages;
  }

  /** Adds a chunk to the pending frame; returns what follows the frame once it is complete. */
  private completePendingFrame(chunk: Buffer, messages: FrontendMessage[]): Buffer | undefined {
    const bytesBefore = this.pendingLength;
    this.pending.push(chunk);
    this.pendingLength += chunk.length;

    if (this.pendingFrameLength === undefined) {
      const headerLength = this.headerLength();
      if (this.pendingLength < headerLength) return undefined;
      // Only the few header bytes are copied here, never the whole backlog.
      const header = this.pending[0].length >= headerLength ? this.pending[0] : Buffer.concat(this.pending, headerLength);
      this.pendingFrameLength = this.frameLength(header, 0);
    }
    const frameLength = this.pendingFrameLength;
    if (this.pendingLength < frameLength) return undefined;

    const frame = Buffer.concat(this.pending, frameLength);
    this.pending = [];
    this.pendingLength = 0;
    this.pendingFrameLength = undefined;
    messages.push(this.decodeFrame(frame));
    // The pending bytes were less than one frame, so the frame ends inside this chunk.
    return chunk.subarray(frameLength - bytesBefore);
  }

  private parseWholeFrames(data: Buffer, messages: FrontendMessage[]): void {
    let offset = 0;
    while (data.length - offset >= this.headerLength()) {
      const frameLength = this.frameLength(data, offset);
      if (data.length - offset < frameLength) {
        this.pendingFrameLength = frameLength;
        break;
      }
      messages.push(this.decodeFrame(data.subarray(offset, offset + frameLength)));
      offset += frameLength;
    }
    if (offset < data.length) {
      this.pending.push(data.subarray(offset));
      this.pendingLength = data.length - offset;
    }
  }

  private headerLength(): number {
    return this.phase === 'startup' ? STARTUP_HEADER_LENGTH : TYPED_HEADER_LENGTH;
  }

  /** Total byte length of the frame whose header starts at `offset`; validates it. */
  private frameLength(buf: Buffer, offset: number): number {
    if (this.phase === 'startup') {
      const length = buf.readInt32BE(offset);
      if (length < MIN_STARTUP_LENGTH || length > MAX_STARTUP_LENGTH) {
        throw invalidLength(length, `startup packets are ${MIN_STARTUP_LENGTH}..${MAX_STARTUP_LENGTH} bytes`);
      }
      return length;
    }
    const length = buf.readInt32BE(offset + 1);
    if (length < 4 || length > MAX_TYPED_LENGTH) {
      throw invalidLength(length, `message type '${String.fromCharCode(buf[offset])}'`);
    }
    return length + 1;
  }

  private decodeFrame(frame: Buffer): FrontendMessage {
    if (this.phase === 'typed') return decodeTypedMessage(frame);
    const message = decodeStartupPacket(frame);
    if (message.type === 'startup') this.phase = 'typed';
    return message;
  }
}

function invalidLength(length: number, context: string): SqlError {
  return new SqlError(SqlState.protocolViolation, `invalid message length ${length} (${context})`, { severity: 'FATAL' });
}

function invalidFormat(message = 'invalid message format'): SqlError {
  return new SqlError(SqlState.protocolViolation, message);
}

// ---------------------------------------------------------------- startup

function decodeStartupPacket(packet: Buffer): FrontendMessage {
  const code = packet.readInt32BE(4);
  switch (code) {
    case StartupCode.sslRequest:
      expectStartupLength(packet, 8);
      return { type: 'sslRequest', raw: packet };
    case StartupCode.gssEncRequest:
      expectStartupLength(packet, 8);
      return { type: 'gssEncRequest', raw: packet };
    case StartupCode.cancelRequest:
      expectStartupLength(packet, 16);
      return { type: 'cancelRequest', processId: packet.readInt32BE(8), secretKey: packet.readInt32BE(12), raw: packet };
  }
  if (code >>> 16 === 3) return decodeStartupMessage(packet, code);
  throw new SqlError(SqlState.featureNotSupported, `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`, {
    severity: 'FATAL',
  });
}

function expectStartupLength(packet: Buffer, expected: number): void {
  if (packet.length !== expected) throw invalidLength(packet.length, `expected ${expected} for this request`);
}

function decodeStartupMessage(packet: Buffer, protocolVersion: number): StartupMessage {
  // A null prototype keeps a client-sent "__proto__" key an ordinary key.
  const parameters: Record<string, string> = Object.create(null);
  const reader = new BodyReader(packet, 8);
  const layoutError = 'invalid startup packet layout: expected terminator as last byte';
  for (;;) {
    const name = reader.cstring(layoutError);
    if (name === '') break;
    parameters[name] = reader.cstring(layoutError);
  }
  if (reader.remaining !== 0) throw fatal(invalidFormat(layoutError));
  return { type: 'startup', protocolVersion, parameters, raw: packet };
}

function fatal(error: SqlError): SqlError {
  return new SqlError(error.code, error.message, { severity: 'FATAL' });
}

// ---------------------------------------------------------------- typed

function decodeTypedMessage(frame: Buffer): FrontendMessage {
  const code = frame[0];
  const body = new BodyReader(frame, TYPED_HEADER_LENGTH);
  try {
    return decodeTypedBody(code, body, frame);
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    return { type: 'malformed', code: String.fromCharCode(code), error: err, raw: frame };
  }
}

function decodeTypedBody(code: number, body: BodyReader, raw: Buffer): FrontendMessage {
  switch (code) {
    case FrontendCode.query:
      return body.finish({ type: 'query', sql: body.cstring(), raw });
    case FrontendCode.parse:
      return decodeParse(body, raw);
    case FrontendCode.bind:
      return decodeBind(body, raw);
    case FrontendCode.describe: {
      const kind = readPreparedKind(body, 'DESCRIBE');
      return body.finish({ type: 'describe', kind, name: body.cstring(), raw });
    }
    case FrontendCode.execute: {
      const portal = body.cstring();
      return body.finish({ type: 'execute', portal, maxRows: body.int32(), raw });
    }
    case FrontendCode.sync:
      return body.finish({ type: 'sync', raw });
    case FrontendCode.flush:
      return body.finish({ type: 'flush', raw });
    case FrontendCode.close: {
      const kind = readPreparedKind(body, 'CLOSE');
      return body.finish({ type: 'close', kind, name: body.cstring(), raw });
    }
    case FrontendCode.terminate:
      return body.finish({ type: 'terminate', raw });
    case FrontendCode.copyData:
      return { type: 'copyData', data: body.rest(), raw };
    case FrontendCode.copyDone:
      return body.finish({ type: 'copyDone', raw });
    case FrontendCode.copyFail:
      return body.finish({ type: 'copyFail', message: body.cstring(), raw });
    case FrontendCode.password:
      return { type: 'password', data: body.rest(), raw };
    case FrontendCode.functionCall:
      return { type: 'functionCall', raw };
    default:
      return { type: 'unknown', code: String.fromCharCode(code), raw };
  }
}

function decodeParse(body: BodyReader, raw: Buffer): ParseMessage {
  const name = body.cstring();
  const sql = body.cstring();
  const paramTypes = body.array(() => body.uint32());
  return body.finish({ type: 'parse', name, sql, paramTypes, raw });
}

function decodeBind(body: BodyReader, raw: Buffer): BindMessage {
  const portal = body.cstring();
  const statement = body.cstring();
  const paramFormats = body.array(() => body.int16());
  const params = body.array(() => readBindParameter(body));
  if (paramFormats.length > 1 && paramFormats.length !== params.length) {
    throw invalidFormat(`bind message has ${paramFormats.length} parameter formats but ${params.length} parameters`);
  }
  const resultFormats = body.array(() => body.int16());
  return body.finish({ type: 'bind', portal, statement, paramFormats, params, resultFormats, raw });
}

function readBindParameter(body: BodyReader): Buffer | null {
  const length = body.int32();
  if (length === -1) return null;
  if (length < 0) throw invalidFormat(`invalid parameter length ${length} in bind message`);
  return body.bytes(length);
}

function readPreparedKind(body: BodyReader, messageName: string): PreparedKind {
  const kind = body.byte();
  if (kind === 0x53) return 'S';
  if (kind === 0x50) return 'P';
  throw invalidFormat(`invalid ${messageName} message subtype ${kind}`);
}

/** Bounds-checked cursor over one message body; every overrun is a protocol violation. */
class BodyReader {
  private offset: number;

  constructor(
    private readonly buf: Buffer,
    start: number,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  byte(): number {
    this.require(1);
    return this.buf[this.offset++];
  }

  int16(): number {
    this.require(2);
    const value = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.require(4);
    const value = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint32(): number {
    this.require(4);
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  cstring(errorMessage = 'invalid string in message'): string {
    const terminator = this.buf.indexOf(0, this.offset);
    if (terminator < 0) throw invalidFormat(errorMessage);
    const value = this.buf.toString('utf8', this.offset, terminator);
    this.offset = terminator + 1;
    return value;
  }

  bytes(length: number): Buffer {
    this.require(length);
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** Reads an int16 count followed by that many items. */
  array<T>(readItem: () => T): T[] {
    const count = this.int16();
    if (count < 0) throw invalidFormat(`invalid item count ${count}`);
    const items = new Array<T>(count);
    for (let i = 0; i < count; i++) items[i] = readItem();
    return items;
  }

  /** Returns the decoded message after checking nothing trails it, as PostgreSQL's pq_getmsgend does. */
  finish<T>(message: T): T {
    if (this.remaining !== 0) throw invalidFormat();
    return message;
  }

  private require(length: number): void {
    if (this.remaining < length) throw invalidFormat('insufficient data left in message');
  }
}
