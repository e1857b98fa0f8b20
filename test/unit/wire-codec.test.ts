import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { SqlError } from '../../engine/errors.ts';
import {
  FrontendParser,
  StartupCode,
  authenticationCleartextPassword,
  authenticationOk,
  backendKeyData,
  bindComplete,
  closeComplete,
  commandComplete,
  copyData,
  copyDone,
  copyInResponse,
  copyOutResponse,
  dataRow,
  emptyQueryResponse,
  errorResponse,
  errorResponseFrom,
  negotiateProtocolVersion,
  noData,
  noticeResponse,
  parameterDescription,
  parameterStatus,
  parseComplete,
  portalSuspended,
  readErrorFields,
  readReadyForQueryStatus,
  readyForQuery,
  rowDescription,
  scanBackendMessages,
  type FrontendMessage,
} from '../../sql/wire/codec.ts';

// ---------------------------------------------------------------- helpers

function startupPacket(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const packet = Buffer.alloc(8 + body.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(code, 4);
  body.copy(packet, 8);
  return packet;
}

function typedMessage(code: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const message = Buffer.alloc(5 + body.length);
  message.write(code, 0, 'latin1');
  message.writeInt32BE(4 + body.length, 1);
  body.copy(message, 5);
  return message;
}

function feedAll(chunks: Buffer[], parser = new FrontendParser()): FrontendMessage[] {
  return chunks.flatMap((chunk) => parser.feed(chunk));
}

/** Parses a single typed message after a StartupMessage. */
function parseTyped(message: Buffer): FrontendMessage {
  const parser = new FrontendParser();
  parser.feed(serialize.startup({ user: 'u' }));
  const messages = parser.feed(message);
  expect(messages).toHaveLength(1);
  return messages[0];
}

function expectProtocolViolation(action: () => unknown): void {
  let thrown: unknown;
  try {
    action();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(SqlError);
  expect((thrown as SqlError).code).toBe('08P01');
}

function parseBackend(buf: Buffer): BackendMessage[] {
  const messages: BackendMessage[] = [];
  new Parser().parse(buf, (message) => messages.push(message));
  return messages;
}

function parseOneBackend(buf: Buffer): BackendMessage & Record<string, unknown> {
  const messages = parseBackend(buf);
  expect(messages).toHaveLength(1);
  return messages[0] as BackendMessage & Record<string, unknown>;
}

// ---------------------------------------------------------------- frontend

describe('FrontendParser: startup phase', () => {
  it('parses a StartupMessage', () => {
    const raw = serialize.startup({ user: 'alice', database: 'db', application_name: 'psql' });
    const [message] = new FrontendParser().feed(raw);
    expect(message).toEqual({
      type: 'startup',
      protocolVersion: StartupCode.protocol3,
      parameters: { user: 'alice', database: 'db', application_name: 'psql', client_encoding: 'UTF8' },
      raw,
    });
  });

  it('switches to typed messages right after a StartupMessage in the same chunk', () => {
    const parser = new FrontendParser();
    const messages = parser.feed(Buffer.concat([serialize.startup({ user: 'u' }), serialize.query('select 1')]));
    expect(messages.map((m) => m.type)).toEqual(['startup', 'query']);
    expect(messages[1]).toMatchObject({ type: 'query', sql: 'select 1' });
    expect(parser.started).toBe(true);
  });

  it('stays in startup mode after SSLRequest and GSSENCRequest', () => {
    const parser = new FrontendParser();
    const ssl = serialize.requestSsl();
    const gss = startupPacket(StartupCode.gssEncRequest);
    expect(parser.feed(ssl)).toEqual([{ type: 'sslRequest', raw: ssl }]);
    expect(parser.started).toBe(false);
    expect(parser.feed(gss)).toEqual([{ type: 'gssEncRequest', raw: gss }]);
    const messages = parser.feed(Buffer.concat([serialize.startup({ user: 'u' }), serialize.sync()]));
    expect(messages.map((m) => m.type)).toEqual(['startup', 'sync']);
  });

  it('reports bytes buffered after an SSLRequest', () => {
    const parser = new FrontendParser();
    const startup = serialize.startup({ user: 'u' });
    parser.feed(Buffer.concat([serialize.requestSsl(), startup.subarray(0, 3)]));
    expect(parser.bufferedLength).toBe(3);
  });

  it('parses a CancelRequest', () => {
    const raw = serialize.cancel(4242, -123456789);
    expect(new FrontendParser().feed(raw)).toEqual([
      { type: 'cancelRequest', processId: 4242, secretKey: -123456789, raw },
    ]);
  });

  it('accepts any 3.x protocol version for negotiation', () => {
    const body = Buffer.from('user\0u\0\0');
    const [message] = new FrontendParser().feed(startupPacket(196610, body));
    expect(message).toMatchObject({ type: 'startup', protocolVersion: 196610, parameters: { user: 'u' } });
  });

  it('rejects an unsupported protocol major version', () => {
    expect(() => new FrontendParser().feed(startupPacket(2 << 16, Buffer.from('\0')))).toThrow(
      /unsupported frontend protocol 2\.0/,
    );
  });

  it('rejects a StartupMessage without its terminator', () => {
    expectProtocolViolation(() => new FrontendParser().feed(startupPacket(StartupCode.protocol3, Buffer.from('user\0u\0'))));
  });

  it.each([
    ['too short', 7],
    ['too long', 10001],
    ['negative', -1],
  ])('rejects a startup length that is %s', (_label, length) => {
    const header = Buffer.alloc(8);
    header.writeInt32BE(length, 0);
    header.writeInt32BE(StartupCode.protocol3, 4);
    expectProtocolViolation(() => new FrontendParser().feed(header));
  });

  it('rejects a bad startup length as soon as the length arrives', () => {
    const parser = new FrontendParser();
    parser.feed(Buffer.from([0, 0]));
    expectProtocolViolation(() => parser.feed(Buffer.from([0x40, 0])));
  });

  it('rejects an SSLRequest with a wrong length', () => {
    expectProtocolViolation(() => new FrontendParser().feed(startupPacket(StartupCode.sslRequest, Buffer.alloc(4))));
  });
});

describe('FrontendParser: typed messages', () => {
  it('parses Query', () => {
    const raw = serialize.query('select \u00e9 from t');
    expect(parseTyped(raw)).toEqual({ type: 'query', sql: 'select \u00e9 from t', raw });
  });

  it('parses Parse with and without parameter types', () => {
    const named = serialize.parse({ name: 's1', text: 'select $1, $2', types: [23, 4294967295] });
    expect(parseTyped(named)).toEqual({
      type: 'parse',
      name: 's1',
      sql: 'select $1, $2',
      paramTypes: [23, 4294967295],
      raw: named,
    });
    const unnamed = serialize.parse({ text: 'select 1' });
    expect(parseTyped(unnamed)).toMatchObject({ type: 'parse', name: '', sql: 'select 1', paramTypes: [] });
  });

  it('parses Bind with text, binary and null parameters', () => {
    const raw = serialize.bind({
      portal: 'p1',
      statement: 's1',
      values: ['hello', null, Buffer.from([1, 2, 3])],
      binary: true,
    });
    expect(parseTyped(raw)).toEqual({
      type: 'bind',
      portal: 'p1',
      statement: 's1',
      paramFormats: [0, 0, 1],
      params: [Buffer.from('hello'), null, Buffer.from([1, 2, 3])],
      resultFormats: [1],
      raw,
    });
  });

  it('parses an empty Bind', () => {
    expect(parseTyped(serialize.bind())).toMatchObject({
      type: 'bind',
      portal: '',
      statement: '',
      paramFormats: [],
      params: [],
      resultFormats: [0],
    });
  });

  it('parses Describe and Close for statements and portals', () => {
    expect(parseTyped(serialize.describe({ type: 'S', name: 'stmt' }))).toMatchObject({
      type: 'describe',
      kind: 'S',
      name: 'stmt',
    });
    expect(parseTyped(serialize.describe({ type: 'P' }))).toMatchObject({ type: 'describe', kind: 'P', name: '' });
    expect(parseTyped(serialize.close({ type: 'P', name: 'portal' }))).toMatchObject({
      type: 'close',
      kind: 'P',
      name: 'portal',
    });
    expect(parseTyped(serialize.close({ type: 'S' }))).toMatchObject({ type: 'close', kind: 'S', name: '' });
  });

  it('parses Execute', () => {
    expect(parseTyped(serialize.execute())).toMatchObject({ type: 'execute', portal: '', maxRows: 0 });
    expect(parseTyped(serialize.execute({ portal: 'c', rows: 100 }))).toMatchObject({
      type: 'execute',
      portal: 'c',
      maxRows: 100,
    });
  });

  it('parses the body-less messages', () => {
    expect(parseTyped(serialize.sync())).toEqual({ type: 'sync', raw: serialize.sync() });
    expect(parseTyped(serialize.flush())).toEqual({ type: 'flush', raw: serialize.flush() });
    expect(parseTyped(serialize.end())).toEqual({ type: 'terminate', raw: serialize.end() });
    expect(parseTyped(serialize.copyDone())).toEqual({ type: 'copyDone', raw: serialize.copyDone() });
  });

  it('parses COPY messages', () => {
    const payload = Buffer.from('1\tone\n2\ttwo\n');
    expect(parseTyped(serialize.copyData(payload))).toMatchObject({ type: 'copyData', data: payload });
    expect(parseTyped(serialize.copyFail('client gave up'))).toMatchObject({
      type: 'copyFail',
      message: 'client gave up',
    });
  });

  it('parses password and SASL responses as PasswordMessage', () => {
    expect(parseTyped(serialize.password('secret'))).toMatchObject({ type: 'password', data: Buffer.from('secret\0') });
    const sasl = serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc');
    expect(parseTyped(sasl)).toMatchObject({ type: 'password', data: sasl.subarray(5) });
  });

  it('parses FunctionCall and unknown messages by type only', () => {
    expect(parseTyped(typedMessage('F', Buffer.alloc(10)))).toMatchObject({ type: 'functionCall' });
    expect(parseTyped(typedMessage('Z', Buffer.from('x')))).toMatchObject({ type: 'unknown', code: 'Z' });
  });

  it('reports a malformed body as a message and keeps going', () => {
    const parser = new FrontendParser();
    parser.feed(serialize.startup({ user: 'u' }));
    const badDescribe = typedMessage('D', Buffer.from('Xname\0'));
    const unterminatedQuery = typedMessage('Q', Buffer.from('select 1'));
    const trailingSync = typedMessage('S', Buffer.from([1]));
    const messages = parser.feed(Buffer.concat([badDescribe, unterminatedQuery, trailingSync, serialize.sync()]));
    expect(messages.map((m) => m.type)).toEqual(['malformed', 'malformed', 'malformed', 'sync']);
    for (const message of messages.slice(0, 3)) {
      if (message.type !== 'malformed') throw new Error('expected malformed');
      expect(message.error.code).toBe('08P01');
    }
    expect(messages[0]).toMatchObject({ code: 'D', raw: badDescribe });
  });

  it.each([
    ['too short', 3],
    ['negative', -5],
    ['over 1 GiB', 0x40000001],
  ])('rejects a typed length that is %s', (_label, length) => {
    const parser = new FrontendParser();
    parser.feed(serialize.startup({ user: 'u' }));
    const header = Buffer.alloc(5);
    header.write('Q', 0, 'latin1');
    header.writeInt32BE(length, 1);
    expectProtocolViolation(() => parser.feed(header));
  });

  it('accepts a length of exactly 1 GiB in the header', () => {
    const parser = new FrontendParser();
    parser.feed(serialize.startup({ user: 'u' }));
    const header = Buffer.alloc(5);
    header.write('d', 0, 'latin1');
    header.writeInt32BE(0x40000000, 1);
    expect(parser.feed(header)).toEqual([]);
    expect(parser.bufferedLength).toBe(5);
  });
});

describe('FrontendParser: chunking', () => {
  const stream = Buffer.concat([
    serialize.requestSsl(),
    serialize.startup({ user: 'alice', database: 'sluice' }),
    serialize.query('create table t (a int)'),
    serialize.parse({ name: 'ins', text: 'insert into t values ($1)', types: [23] }),
    serialize.bind({ statement: 'ins', values: ['1'] }),
    serialize.describe({ type: 'P' }),
    serialize.execute(),
    serialize.sync(),
    serialize.copyData(Buffer.alloc(300, 7)),
    serialize.copyDone(),
    serialize.query(''),
    serialize.flush(),
    serialize.end(),
  ]);
  const expected = new FrontendParser().feed(stream);

  it('parses the stream in one chunk', () => {
    expect(expected.map((m) => m.type)).toEqual([
      'sslRequest',
      'startup',
      'query',
      'parse',
      'bind',
      'describe',
      'execute',
      'sync',
      'copyData',
      'copyDone',
      'query',
      'flush',
      'terminate',
    ]);
  });

  it('yields the same messages when split at every offset', () => {
    for (let split = 0; split <= stream.length; split++) {
      const messages = feedAll([stream.subarray(0, split), stream.subarray(split)]);
      expect(messages, `split at ${split}`).toEqual(expected);
    }
  });

  it('yields the same messages when split in three at many offsets', () => {
    for (let first = 0; first <= stream.length; first += 17) {
      for (let second = first; second <= stream.length; second += 23) {
        const chunks = [stream.subarray(0, first), stream.subarray(first, second), stream.subarray(second)];
        expect(feedAll(chunks), `split at ${first}, ${second}`).toEqual(expected);
      }
    }
  });

  it('yields the same messages from 1-byte chunks', () => {
    const chunks = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expect(feedAll(chunks)).toEqual(expected);
  });

  it('keeps raw bytes stable while later chunks arrive', () => {
    const parser = new FrontendParser();
    const kept: FrontendMessage[] = [];
    // Fresh copies per chunk, like net.Socket delivers them; odd sizes force reassembly.
    for (let offset = 0; offset < stream.length; offset += 13) {
      kept.push(...parser.feed(Buffer.from(stream.subarray(offset, offset + 13))));
    }
    expect(Buffer.concat(kept.map((m) => m.raw))).toEqual(stream);
    expect(kept).toEqual(expected);
  });
});

// ---------------------------------------------------------------- backend

describe('backend serializers', () => {
  it('writes authentication, parameter status and key data', () => {
    expect(parseOneBackend(authenticationOk()).name).toBe('authenticationOk');
    expect(parseOneBackend(authenticationCleartextPassword()).name).toBe('authenticationCleartextPassword');
    expect(parseOneBackend(parameterStatus('server_version', '17.0'))).toMatchObject({
      name: 'parameterStatus',
      parameterName: 'server_version',
      parameterValue: '17.0',
    });
    expect(parseOneBackend(backendKeyData(1234, -99))).toMatchObject({
      name: 'backendKeyData',
      processID: 1234,
      secretKey: -99,
    });
  });

  it('writes unsigned key data as the same 32 bits', () => {
    const [message] = new FrontendParser().feed(serialize.cancel(7, 0xfffffffe | 0));
    expect(parseOneBackend(backendKeyData(7, 0xfffffffe))).toMatchObject({ secretKey: -2 });
    expect(message).toMatchObject({ secretKey: 0xfffffffe | 0 });
  });

  it.each(['I', 'T', 'E'] as const)('writes ReadyForQuery %s', (status) => {
    expect(parseOneBackend(readyForQuery(status))).toMatchObject({ name: 'readyForQuery', status });
  });

  it('writes RowDescription with defaults and explicit values', () => {
    const message = parseOneBackend(
      rowDescription([
        { name: 'id', typeOid: 23 },
        { name: 'n\u00e4me', tableOid: 16384, columnAttr: 2, typeOid: 1043, typeSize: -1, typeMod: 36, format: 1 },
        { name: 'big_oid', typeOid: 4294967295, typeSize: 8 },
      ]),
    );
    expect(message.name).toBe('rowDescription');
    expect(message.fields).toEqual([
      expect.objectContaining({ name: 'id', tableID: 0, columnID: 0, dataTypeID: 23, dataTypeSize: -1, dataTypeModifier: -1, format: 'text' }),
      expect.objectContaining({ name: 'n\u00e4me', tableID: 16384, columnID: 2, dataTypeID: 1043, dataTypeModifier: 36, format: 'binary' }),
      expect.objectContaining({ name: 'big_oid', dataTypeID: 4294967295, dataTypeSize: 8 }),
    ]);
  });

  it('writes DataRow with text, bytes and nulls', () => {
    const message = parseOneBackend(dataRow(['1', null, Buffer.from('caf\u00e9'), '', 'z\u00fcrich']));
    expect(message).toMatchObject({ name: 'dataRow', fields: ['1', null, 'caf\u00e9', '', 'z\u00fcrich'] });
  });

  it('writes an empty DataRow', () => {
    expect(parseOneBackend(dataRow([]))).toMatchObject({ name: 'dataRow', fields: [] });
  });

  it('writes command completion messages', () => {
    expect(parseOneBackend(commandComplete('INSERT 0 3'))).toMatchObject({ name: 'commandComplete', text: 'INSERT 0 3' });
    expect(parseOneBackend(emptyQueryResponse()).name).toBe('emptyQuery');
  });

  it('writes the extended-query acknowledgements', () => {
    const names = parseBackend(
      Buffer.concat([parseComplete(), bindComplete(), closeComplete(), noData(), portalSuspended()]),
    ).map((m) => m.name);
    expect(names).toEqual(['parseComplete', 'bindComplete', 'closeComplete', 'noData', 'portalSuspended']);
    expect(parseOneBackend(parameterDescription([23, 25, 4294967295]))).toMatchObject({
      name: 'parameterDescription',
      dataTypeIDs: [23, 25, 4294967295],
    });
  });

  it('writes COPY messages', () => {
    expect(parseOneBackend(copyInResponse(0, [0, 0]))).toMatchObject({
      name: 'copyInResponse',
      binary: false,
      columnTypes: [0, 0],
    });
    expect(parseOneBackend(copyOutResponse(1, [1, 1, 1]))).toMatchObject({
      name: 'copyOutResponse',
      binary: true,
      columnTypes: [1, 1, 1],
    });
    expect(parseOneBackend(copyData(Buffer.from('a\tb\n')))).toMatchObject({ name: 'copyData', chunk: Buffer.from('a\tb\n') });
    expect(parseOneBackend(copyDone()).name).toBe('copyDone');
  });

  it('writes ErrorResponse with every field', () => {
    const buf = errorResponse({
      code: '23505',
      message: 'duplicate key',
      detail: 'Key (a)=(1) already exists.',
      hint: 'try another',
      position: 8,
      internalPosition: 3,
      internalQuery: 'select 1',
      where: 'SQL function',
      schema: 'public',
      table: 't',
      column: 'a',
      dataType: 'int4',
      constraint: 't_pkey',
      file: 'nbtinsert.c',
      line: 666,
      routine: '_bt_check_unique',
    });
    expect(parseOneBackend(buf)).toMatchObject({
      name: 'error',
      severity: 'ERROR',
      code: '23505',
      message: 'duplicate key',
      detail: 'Key (a)=(1) already exists.',
      hint: 'try another',
      position: '8',
      internalPosition: '3',
      internalQuery: 'select 1',
      where: 'SQL function',
      schema: 'public',
      table: 't',
      column: 'a',
      dataType: 'int4',
      constraint: 't_pkey',
      file: 'nbtinsert.c',
      line: '666',
      routine: '_bt_check_unique',
    });
  });

  it('writes both S and V severities, S first', () => {
    const buf = errorResponse({ severity: 'FATAL', code: '57P01', message: 'bye' });
    expect(buf.subarray(5).toString('latin1')).toBe('SFATAL\0VFATAL\0C57P01\0Mbye\0\0');
  });

  it('writes NoticeResponse with NOTICE as the default severity', () => {
    expect(parseOneBackend(noticeResponse({ code: '00000', message: 'relation exists, skipping' }))).toMatchObject({
      name: 'notice',
      severity: 'NOTICE',
      code: '00000',
      message: 'relation exists, skipping',
    });
    expect(parseOneBackend(noticeResponse({ severity: 'WARNING', code: '01000', message: 'w' }))).toMatchObject({
      severity: 'WARNING',
    });
  });

  it('maps a SqlError to an ErrorResponse', () => {
    const err = new SqlError('42P01', 'relation "nope" does not exist', { position: 15, hint: 'h', detail: 'd' });
    expect(parseOneBackend(errorResponseFrom(err))).toMatchObject({
      name: 'error',
      severity: 'ERROR',
      code: '42P01',
      message: 'relation "nope" does not exist',
      position: '15',
      hint: 'h',
      detail: 'd',
    });
  });

  it('shows neither the text nor a position of a statement Sluice generated', () => {
    const err = new SqlError('42703', 'column "b" does not exist', { position: 8, internalQuery: 'select b from t' });
    const message = parseOneBackend(errorResponseFrom(err));
    expect(message).toMatchObject({ code: '42703', message: 'column "b" does not exist' });
    expect(message.position).toBeUndefined();
    expect(message.internalPosition).toBeUndefined();
    expect(message.internalQuery).toBeUndefined();
  });

  it('maps other thrown values to XX000', () => {
    expect(parseOneBackend(errorResponseFrom(new TypeError('boom')))).toMatchObject({ code: 'XX000', message: 'boom' });
    expect(parseOneBackend(errorResponseFrom('just a string'))).toMatchObject({
      code: 'XX000',
      message: 'just a string',
    });
  });

  it('writes NegotiateProtocolVersion', () => {
    const buf = negotiateProtocolVersion(0, ['_pq_.foo', '_pq_.bar']);
    expect(scanBackendMessages(buf)).toEqual([{ type: 'v', start: 0, end: buf.length }]);
    expect(buf.readInt32BE(5)).toBe(0);
    expect(buf.readInt32BE(9)).toBe(2);
    expect(buf.subarray(13).toString('utf8')).toBe('_pq_.foo\0_pq_.bar\0');
  });
});

describe('backend scanning', () => {
  const error = errorResponse({ code: '42601', message: 'syntax error at or near "x"', position: 3, hint: 'h' });
  const stream = Buffer.concat([
    readyForQuery('T'),
    rowDescription([{ name: 'a', typeOid: 23 }]),
    // A row whose tail looks like a ReadyForQuery must not fool the scanner.
    dataRow([Buffer.from([0x5a, 0, 0, 0, 5, 0x49])]),
    commandComplete('SELECT 1'),
    error,
    readyForQuery('E'),
    dataRow([Buffer.from([0x5a, 0, 0, 0, 5, 0x49])]),
  ]);

  it('finds every message span', () => {
    const spans = scanBackendMessages(stream);
    expect(spans.map((s) => s.type)).toEqual(['Z', 'T', 'D', 'C', 'E', 'Z', 'D']);
    expect(spans[0]).toEqual({ type: 'Z', start: 0, end: 6 });
    expect(spans.at(-1)?.end).toBe(stream.length);
    for (let i = 1; i < spans.length; i++) expect(spans[i].start).toBe(spans[i - 1].end);
  });

  it('leaves out a trailing partial message', () => {
    const spans = scanBackendMessages(stream.subarray(0, stream.length - 2));
    expect(spans).toHaveLength(6);
  });

  it('reads the status of the last ReadyForQuery', () => {
    expect(readReadyForQueryStatus(stream)).toBe('E');
    expect(readReadyForQueryStatus(Buffer.concat([stream, readyForQuery('I')]))).toBe('I');
    expect(readReadyForQueryStatus(commandComplete('SELECT 0'))).toBeUndefined();
    expect(readReadyForQueryStatus(Buffer.alloc(0))).toBeUndefined();
  });

  it('reads error fields', () => {
    const span = scanBackendMessages(stream).find((s) => s.type === 'E');
    if (!span) throw new Error('no error span');
    expect(readErrorFields(stream, span.start, span.end)).toEqual({
      code: '42601',
      message: 'syntax error at or near "x"',
      severity: 'ERROR',
      hint: 'h',
      position: 3,
    });
  });

  it('rejects an impossible backend length', () => {
    expectProtocolViolation(() => scanBackendMessages(Buffer.from([0x5a, 0, 0, 0, 2, 0x49])));
  });
});
