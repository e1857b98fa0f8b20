import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage, DataRowMessage, RowDescriptionMessage, CommandCompleteMessage, DatabaseError, ReadyForQueryMessage } from 'pg-protocol/dist/messages.js';
import { SqlError } from '../../engine/errors.ts';
import type { QueryResult, StoreConnection, TransactionStatus } from '../../engine/store.ts';

/** Sends frontend protocol bytes and resolves with every backend byte they produced. */
export type RawExchange = (request: Buffer) => Promise<Buffer>;

/**
 * A StoreConnection that speaks the wire protocol over any raw exchange
 * (PGlite's execProtocolRaw, or a socket). Results stay in text format, so
 * values reach the engine exactly as PostgreSQL prints them.
 */
export class ProtocolConnection implements StoreConnection {
  transactionStatus: TransactionStatus = 'I';

  constructor(
    private readonly exchange: RawExchange,
    /** The session's reported settings, when the transport tracks them. */
    readonly reportedSetting?: (name: string) => string | undefined,
  ) {}

  async query(sql: string, params: readonly (string | Buffer | null)[] = [], types?: readonly number[]): Promise<QueryResult> {
    const request = Buffer.concat([
      serialize.parse({ text: sql, types: types as number[] | undefined }),
      // A Buffer goes in binary format, read by the parameter type's receive function.
      serialize.bind({ values: params as (string | Buffer | null)[] }),
      serialize.describe({ type: 'P' }),
      serialize.execute({}),
      serialize.sync(),
    ]);
    return this.collect(await this.exchange(request), sql);
  }

  async exec(sql: string): Promise<void> {
    this.collect(await this.exchange(serialize.query(sql)), sql);
  }

  private collect(response: Buffer, sql: string): QueryResult {
    const result: QueryResult = { fields: [], rows: [], command: '' };
    let error: DatabaseError | undefined;
    new Parser().parse(response, (message: BackendMessage) => {
      switch (message.name) {
        case 'rowDescription':
          result.fields = (message as RowDescriptionMessage).fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID }));
          break;
        case 'dataRow':
          result.rows.push((message as DataRowMessage).fields as (string | null)[]);
          break;
        case 'commandComplete':
          result.command = (message as CommandCompleteMessage).text;
          break;
        case 'error':
          error ??= message as DatabaseError;
          break;
        case 'readyForQuery':
          this.transactionStatus = (message as ReadyForQueryMessage).status as TransactionStatus;
          break;
      }
    });
    if (error) throw storeError(error, sql);
    return result;
  }
}

function storeError(error: DatabaseError, sql: string): SqlError {
  return new SqlError(error.code ?? 'XX000', error.message, {
    detail: error.detail,
    hint: error.hint,
    position: error.position ? Number(error.position) : undefined,
    internalQuery: sql,
  });
}
