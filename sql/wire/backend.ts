/**
 * Server side of the PostgreSQL 3.0 protocol, backend half: serializers for
 * the messages Sluice sends, and a light scanner for the messages an embedded
 * PostgreSQL produces (which the server forwards mostly untouched).
 */
import { SqlError, SqlState } from '../../engine/errors.ts';

/** Type bytes of the messages a server sends. */
export const BackendCode = {
  authentication: 0x52, // R
  parameterStatus: 0x53, // S
  backendKeyData: 0x4b, // K
  readyForQuery: 0x5a, // Z
  rowDescription: 0x54, // T
  dataRow: 0x44, // D
  commandComplete: 0x43, // C
  emptyQueryResponse: 0x49, // I
  errorResponse: 0x45, // E
  noticeResponse: 0x4e, // N
  parseComplete: 0x31, // 1
  bindComplete: 0x32, // 2
  closeComplete: 0x33, // 3
  noData: 0x6e, // n
  parameterDescription: 0x74, // t
  portalSuspended: 0x73, // s
  copyInResponse: 0x47, // G
  copyOutResponse: 0x48, // H
  copyData: 0x64, // d
  copyDone: 0x63, // c
  negotiateProtocolVersion: 0x76, // v
} as const;

const AuthenticationKind = {
  ok: 0,
  cleartextPassword: 3,
} as const;

const HEADER_LENGTH = 5;

/**
 * Builds one backend message: type byte, int32 length, body. The buffer
 * grows geometrically; callers that know the size pass it to avoid growth.
 */
class MessageWriter {
  private buf: Buffer;
  private offset = HEADER_LENGTH;

  constructor(code: number, capacity = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, HEADER_LENGTH));
    this.buf[0] = code;
  }

  int8(value: number): this {
    this.ensure(1);
    this.buf.writeUInt8(value, this.offset);
    this.offset += 1;
    return this;
  }

  int16(value: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(value, this.offset);
    this.offset += 2;
    return this;
  }

  int32(value: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(value, this.offset);
    this.offset += 4;
    return this;
  }

  /** OIDs are unsigned on the wire. */
  uint32(value: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(value, this.offset);
    this.offset += 4;
    return this;
  }

  cstring(value: string): this {
    const length = Buffer.byteLength(value);
    this.ensure(length + 1);
    this.buf.write(value, this.offset, length, 'utf8');
    this.buf[this.offset + length] = 0;
    this.offset += length + 1;
    return this;
  }

  /** A nullable value prefixed by its int32 length (-1 for NULL), as in DataRow. */
  lengthPrefixed(value: Buffer | string | null): this {
    if (value === null) return this.int32(-1);
    if (typeof value === 'string') {
      const length = Buffer.byteLength(value);
      this.int32(length).ensure(length);
      this.buf.write(value, this.offset, length, 'utf8');
      this.offset += length;
      return this;
    }
    return this.int32(value.length).bytes(value);
  }

  bytes(value: Buffer): this {
    this.ensure(value.length);
    value.copy(this.buf, this.offset);
    this.offset += value.length;
    return this;
  }

  finish(): Buffer {
    this.buf.writeInt32BE(this.offset - 1, 1);
    return this.buf.subarray(0, this.offset);
  }

  private ensure(length: number): this {
    const needed = this.offset + length;
    if (needed > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.offset);
      this.buf = grown;
    }
    return this;
  }
}

/**
 * Body-less messages are shared constants: they are hot (one per statement)
 * and identical every time. Callers must not mutate them.
 */
function bodyless(code: number): Buffer {
  return new MessageWriter(code, HEADER_LENGTH).finish();
}

const PARSE_COMPLETE = bodyless(BackendCode.parseComplete);
const BIND_COMPLETE = bodyless(BackendCode.bindComplete);
const CLOSE_COMPLETE = bodyless(BackendCode.closeComplete);
const NO_DATA = bodyless(BackendCode.noData);
const PORTAL_SUSPENDED = bodyless(BackendCode.portalSuspended);
const EMPTY_QUERY_RESPONSE = bodyless(BackendCode.emptyQueryResponse);
const COPY_DONE = bodyless(BackendCode.copyDone);
const AUTHENTICATION_OK = authentication(AuthenticationKind.ok);
const AUTHENTICATION_CLEARTEXT = authentication(AuthenticationKind.cleartextPassword);

export type TransactionStatus = 'I' | 'T' | 'E';

const READY_FOR_QUERY: Record<TransactionStatus, Buffer> = {
  I: readyForQueryMessage('I'),
  T: readyForQueryMessage('T'),
  E: readyForQueryMessage('E'),
};

function authentication(kind: number): Buffer {
  return new MessageWriter(BackendCode.authentication, 9).int32(kind).finish();
}

function readyForQueryMessage(status: TransactionStatus): Buffer {
  return new MessageWriter(BackendCode.readyForQuery, 6).int8(status.charCodeAt(0)).finish();
}

// ---------------------------------------------------------------- startup

export function authenticationOk(): Buffer {
  return AUTHENTICATION_OK;
}

export function authenticationCleartextPassword(): Buffer {
  return AUTHENTICATION_CLEARTEXT;
}

export function parameterStatus(name: string, value: string): Buffer {
  return new MessageWriter(BackendCode.parameterStatus).cstring(name).cstring(value).finish();
}

/**
 * Both values go out as int32; unsigned values are reinterpreted bit for bit,
 * so a CancelRequest brings them back as the signed equivalent (`x | 0`).
 */
export function backendKeyData(processId: number, secretKey: number): Buffer {
  return new MessageWriter(BackendCode.backendKeyData, 13).int32(processId | 0).int32(secretKey | 0).finish();
}

export function negotiateProtocolVersion(newestMinor: number, unrecognizedOptions: string[]): Buffer {
  const writer = new MessageWriter(BackendCode.negotiateProtocolVersion);
  writer.int32(newestMinor).int32(unrecognizedOptions.length);
  for (const option of unrecognizedOptions) writer.cstring(option);
  return writer.finish();
}

export function readyForQuery(status: TransactionStatus): Buffer {
  return READY_FOR_QUERY[status];
}

// ---------------------------------------------------------------- results

export interface FieldDescription {
  name: string;
  /** OID of the source table, 0 if the column is computed. */
  tableOid?: number;
  /** Attribute number in the source table, 0 if the column is computed. */
  columnAttr?: number;
  typeOid: number;
  /** pg_type.typlen; -1 for variable-length types. */
  typeSize?: number;
  /** Type modifier (e.g. varchar length + 4); -1 when none. */
  typeMod?: number;
  /** 0 = text, 1 = binary. */
  format?: number;
}

export function rowDescription(fields: readonly FieldDescription[]): Buffer {
  const writer = new MessageWriter(BackendCode.rowDescription, 7 + fields.length * 32);
  writer.int16(fields.length);
  for (const field of fields) {
    writer
      .cstring(field.name)
      .uint32(field.tableOid ?? 0)
      .int16(field.columnAttr ?? 0)
      .uint32(field.typeOid)
      .int16(field.typeSize ?? -1)
      .int32(field.typeMod ?? -1)
      .int16(field.format ?? 0);
  }
  return writer.finish();
}

/** One row; strings are sent as UTF-8 text, buffers as given, null as SQL NULL. */
export function dataRow(values: readonly (Buffer | string | null)[]): Buffer {
  // DataRow is the hottest message: size it exactly so the writer never grows.
  let size = HEADER_LENGTH + 2;
  for (const value of values) size += 4 + encodedLength(value);
  const writer = new MessageWriter(BackendCode.dataRow, size);
  writer.int16(values.length);
  for (const value of values) writer.lengthPrefixed(value);
  return writer.finish();
}

function encodedLength(value: Buffer | string | null): number {
  if (value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

export function commandComplete(tag: string): Buffer {
  return new MessageWriter(BackendCode.commandComplete, 32).cstring(tag).finish();
}

export function emptyQueryResponse(): Buffer {
  return EMPTY_QUERY_RESPONSE;
}

// ---------------------------------------------------------------- extended query

export function parseComplete(): Buffer {
  return PARSE_COMPLETE;
}

export function bindComplete(): Buffer {
  return BIND_COMPLETE;
}

export function closeComplete(): Buffer {
  return CLOSE_COMPLETE;
}

export function noData(): Buffer {
  return NO_DATA;
}

export function portalSuspended(): Buffer {
  return PORTAL_SUSPENDED;
}

export function parameterDescription(typeOids: readonly number[]): Buffer {
  const writer = new MessageWriter(BackendCode.parameterDescription, 7 + typeOids.length * 4);
  writer.int16(typeOids.length);
  for (const oid of typeOids) writer.uint32(oid);
  return writer.finish();
}

// ---------------------------------------------------------------- COPY

export type CopyFormat = 0 | 1;

export function copyInResponse(overallFormat: CopyFormat, columnFormats: readonly number[]): Buffer {
  return copyResponse(BackendCode.copyInResponse, overallFormat, columnFormats);
}

export function copyOutResponse(overallFormat: CopyFormat, columnFormats: readonly number[]): Buffer {
  return copyResponse(BackendCode.copyOutResponse, overallFormat, columnFormats);
}

function copyResponse(code: number, overallFormat: CopyFormat, columnFormats: readonly number[]): Buffer {
  const writer = new MessageWriter(code, 8 + columnFormats.length * 2);
  writer.int8(overallFormat).int16(columnFormats.length);
  for (const format of columnFormats) writer.int16(format);
  return writer.finish();
}

export function copyData(data: Buffer): Buffer {
  return new MessageWriter(BackendCode.copyData, HEADER_LENGTH + data.length).bytes(data).finish();
}

export function copyDone(): Buffer {
  return COPY_DONE;
}

// ---------------------------------------------------------------- errors and notices

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

export interface NoticeFields {
  severity?: Severity;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the statement text. */
  position?: number;
  internalPosition?: number;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: number;
  routine?: string;
}

type OptionalFieldName = Exclude<keyof NoticeFields, 'severity' | 'code' | 'message'>;

// Field type bytes in the order PostgreSQL emits them.
const OPTIONAL_FIELD_CODES: readonly (readonly [OptionalFieldName, string])[] = [
  ['detail', 'D'],
  ['hint', 'H'],
  ['position', 'P'],
  ['internalPosition', 'p'],
  ['internalQuery', 'q'],
  ['where', 'W'],
  ['schema', 's'],
  ['table', 't'],
  ['column', 'c'],
  ['dataType', 'd'],
  ['constraint', 'n'],
  ['file', 'F'],
  ['line', 'L'],
  ['routine', 'R'],
];

export function errorResponse(fields: NoticeFields): Buffer {
  return noticeOrError(BackendCode.errorResponse, fields, 'ERROR');
}

export function noticeResponse(fields: NoticeFields): Buffer {
  return noticeOrError(BackendCode.noticeResponse, fields, 'NOTICE');
}

function noticeOrError(code: number, fields: NoticeFields, defaultSeverity: Severity): Buffer {
  const severity = fields.severity ?? defaultSeverity;
  const writer = new MessageWriter(code, 128);
  // 'S' may be localized, 'V' never is; PostgreSQL 9.6+ sends both.
  writeField(writer, 'S', severity);
  writeField(writer, 'V', severity);
  writeField(writer, 'C', fields.code);
  writeField(writer, 'M', fields.message);
  for (const [name, fieldCode] of OPTIONAL_FIELD_CODES) {
    const value = fields[name];
    if (value !== undefined) writeField(writer, fieldCode, String(value));
  }
  return writer.int8(0).finish();
}

function writeField(writer: MessageWriter, fieldCode: string, value: string): void {
  writer.int8(fieldCode.charCodeAt(0)).cstring(value);
}

/** Maps anything thrown to the fields of an ErrorResponse; only SqlError keeps its SQLSTATE. */
export function errorFieldsFrom(err: unknown): NoticeFields {
  if (err instanceof SqlError) {
    const fields: NoticeFields = { severity: err.severity, code: err.code, message: err.message };
    if (err.detail !== undefined) fields.detail = err.detail;
    if (err.hint !== undefined) fields.hint = err.hint;
    // An error of a statement Sluice generated says nothing about the client's text:
    // neither that statement nor a position in it is shown (they are logged instead).
    if (err.internalQuery === undefined && err.position !== undefined) {
      fields.position = err.position;
    }
    return fields;
  }
  const message = err instanceof Error ? err.message : String(err);
  return { severity: 'ERROR', code: SqlState.internalError, message };
}

export function errorResponseFrom(err: unknown): Buffer {
  return errorResponse(errorFieldsFrom(err));
}

// ---------------------------------------------------------------- scanning forwarded output

export interface BackendMessageSpan {
  /** The type byte as a one-character string, e.g. 'Z'. */
  type: string;
  /** Offset of the type byte. */
  start: number;
  /** Offset just past the message. */
  end: number;
}

/**
 * Splits a buffer of backend messages into spans without copying. A trailing
 * incomplete message is left out: compare the last `end` with `buf.length`.
 */
export function scanBackendMessages(buf: Buffer): BackendMessageSpan[] {
  const spans: BackendMessageSpan[] = [];
  forEachBackendMessage(buf, (code, start, end) => {
    spans.push({ type: String.fromCharCode(code), start, end });
  });
  return spans;
}

/** Transaction status of the last ReadyForQuery in `buf`, if there is one. */
export function readReadyForQueryStatus(buf: Buffer): TransactionStatus | undefined {
  let status: TransactionStatus | undefined;
  forEachBackendMessage(buf, (code, start, end) => {
    if (code !== BackendCode.readyForQuery || end - start !== 6) return;
    const candidate = String.fromCharCode(buf[start + HEADER_LENGTH]);
    if (isTransactionStatus(candidate)) status = candidate;
  });
  return status;
}

function isTransactionStatus(value: string): value is TransactionStatus {
  return value === 'I' || value === 'T' || value === 'E';
}

function forEachBackendMessage(buf: Buffer, visit: (code: number, start: number, end: number) => void): void {
  let offset = 0;
  while (buf.length - offset >= HEADER_LENGTH) {
    const length = buf.readInt32BE(offset + 1);
    if (length < 4) {
      throw new SqlError(SqlState.protocolViolation, `invalid backend message length ${length} at offset ${offset}`);
    }
    const end = offset + 1 + length;
    if (end > buf.length) return;
    visit(buf[offset], offset, end);
    offset = end;
  }
}

export interface ReadErrorFields {
  code: string;
  message: string;
  /** The non-localized 'V' severity when present, else 'S'. */
  severity: string;
  detail?: string;
  hint?: string;
  position?: number;
}

/** Reads the main fields of the ErrorResponse or NoticeResponse spanning [start, end). */
export function readErrorFields(buf: Buffer, start: number, end: number): ReadErrorFields {
  const raw = readRawFields(buf, start + HEADER_LENGTH, end);
  const fields: ReadErrorFields = {
    code: raw.get('C') ?? SqlState.internalError,
    message: raw.get('M') ?? '',
    severity: raw.get('V') ?? raw.get('S') ?? 'ERROR',
  };
  const detail = raw.get('D');
  const hint = raw.get('H');
  const position = raw.get('P');
  if (detail !== undefined) fields.detail = detail;
  if (hint !== undefined) fields.hint = hint;
  if (position !== undefined) fields.position = Number(position);
  return fields;
}

function readRawFields(buf: Buffer, offset: number, end: number): Map<string, string> {
  const fields = new Map<string, string>();
  while (offset < end && buf[offset] !== 0) {
    const fieldCode = String.fromCharCode(buf[offset]);
    let terminator = buf.indexOf(0, offset + 1);
    if (terminator < 0 || terminator >= end) terminator = end;
    fields.set(fieldCode, buf.toString('utf8', offset + 1, terminator));
    offset = terminator + 1;
  }
  return fields;
}
