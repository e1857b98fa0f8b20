import type { RowBatch } from '../engine/batch.ts';
import { SqlError, SqlState } from '../engine/errors.ts';
import { CopyDecoder, limitPrintout, type CopyFormatOptions } from '../engine/formats/index.ts';
import type { AstFields, AstNode } from './ast.ts';
import { deparse, fieldsOf, nodeKind, stringValue } from './ast.ts';
import type { StatementContext, StatementResult } from './context.ts';
import type { CopyTarget } from './router.ts';
import { AsyncQueue } from './async-queue.ts';
import { binaryTexts } from './binary-values.ts';
import { BinaryCopyDecoder, type BinaryRow } from '../engine/formats/index.ts';
import type { StoreConnection } from '../engine/store.ts';
import type { Stream } from '../engine/stream.ts';
import { BatchBuilder, batchRows, targetPositions } from './stream-writes.ts';

/** Receives the data of a `COPY … FROM STDIN` as it arrives. */
export interface CopySink {
  readonly columnCount: number;
  /** True for `FORMAT binary`: the CopyInResponse says so. */
  readonly binary?: boolean;
  /** Takes one CopyData chunk; throws on malformed data. */
  write(chunk: Buffer): void;
  /** True while the sink is behind; the caller should wait for `drained()`. */
  readonly backlogged: boolean;
  drained(): Promise<void>;
  finish(): Promise<StatementResult>;
  abort(reason: unknown): Promise<void>;
}

export function startCopyIn(ctx: StatementContext, target: CopyTarget): CopySink {
  if (target.kind !== 'stream') return new TableCopySink(ctx, target.stmt);
  return isBinary(target.stmt) ? new BinaryStreamCopySink(ctx, target) : new StreamCopySink(ctx, target);
}

function isBinary(stmt: AstFields): boolean {
  return ((stmt.options as AstNode[] | undefined) ?? []).some((node) => {
    const option = fieldsOf(node, 'DefElem') as AstFields;
    return option.defname === 'format' && optionText(option)?.toLowerCase() === 'binary';
  });
}

function isCsv(stmt: AstFields): boolean {
  return ((stmt.options as AstNode[] | undefined) ?? []).some((node) => {
    const option = fieldsOf(node, 'DefElem') as AstFields;
    return option.defname === 'format' && optionText(option)?.toLowerCase() === 'csv';
  });
}

/**
 * psql before 18 ends CSV data sent to STDIN with a `\.` line, which
 * PostgreSQL 18 reads as data; for STDIN Sluice keeps the old meaning.
 */
function withoutCsvEndMarker(data: Buffer): Buffer {
  const text = data.toString('latin1', Math.max(0, data.length - 5));
  const match = /(^|\n)\\\.\r?\n?$/.exec(text);
  if (!match || (match.index === 0 && match[1] === '' && data.length > text.length)) return data;
  return data.subarray(0, data.length - text.length + match.index + match[1].length);
}

function copyColumns(stmt: AstFields): string[] | undefined {
  const list = stmt.attlist as AstNode[] | undefined;
  return list?.map((c) => stringValue(c) as string);
}

function optionText(option: AstFields): string | undefined {
  const arg = option.arg;
  if (arg === undefined) return undefined;
  if (nodeKind(arg) === 'List') return undefined;
  return stringValue(arg) ?? (nodeKind(arg) === 'Integer' ? String((fieldsOf(arg, 'Integer') as AstFields).ival ?? 0) : nodeKind(arg) === 'Boolean' ? String((fieldsOf(arg, 'Boolean') as AstFields).boolval ?? false) : undefined);
}

function truthy(text: string | undefined): boolean {
  return text === undefined || ['true', 'on', '1', 'yes'].includes(text.toLowerCase());
}

/** COPY options as PostgreSQL spells them, for the stream decoder. */
export function copyFormatOptions(stmt: AstFields, columns: string[]): CopyFormatOptions {
  const options: CopyFormatOptions = { format: 'text' };
  for (const node of (stmt.options as AstNode[] | undefined) ?? []) {
    const option = fieldsOf(node, 'DefElem') as AstFields;
    const name = option.defname as string;
    const value = optionText(option);
    switch (name) {
      case 'format':
        if (value !== 'text' && value !== 'csv') {
          throw new SqlError(SqlState.featureNotSupported, `COPY format "${value}" is not supported for streams`, { hint: 'Use FORMAT text, csv or binary.' });
        }
        options.format = value;
        break;
      case 'delimiter':
        options.delimiter = value;
        break;
      case 'null':
        options.null = value;
        break;
      case 'header':
        options.header = value?.toLowerCase() === 'match' ? 'match' : truthy(value);
        break;
      case 'quote':
        options.quote = value;
        break;
      case 'escape':
        options.escape = value;
        break;
      case 'force_null':
      case 'force_not_null': {
        const listed = new Set(((fieldsOf(option.arg, 'List')?.items as AstNode[] | undefined) ?? []).map((n) => stringValue(n)));
        const flags = columns.map((c) => listed.has(c));
        if (name === 'force_null') options.forceNull = flags;
        else options.forceNotNull = flags;
        break;
      }
      case 'on_error':
      case 'log_verbosity':
        break; // read by copyErrorHandling
      case 'encoding':
        if (!/^utf-?8$/i.test(value ?? '')) throw new SqlError(SqlState.featureNotSupported, `COPY encoding "${value}" is not supported`, { hint: 'Send UTF8 data.' });
        break;
      default:
        throw new SqlError(SqlState.featureNotSupported, `COPY option "${name}" is not supported for streams`);
    }
  }
  return options;
}

/** What COPY does with a value its column's type refuses: PostgreSQL 17's ON_ERROR and LOG_VERBOSITY. */
interface ErrorHandling {
  ignore: boolean;
  verbosity: 'default' | 'verbose' | 'silent';
}

function copyErrorHandling(stmt: AstFields): ErrorHandling {
  const handling: ErrorHandling = { ignore: false, verbosity: 'default' };
  for (const node of (stmt.options as AstNode[] | undefined) ?? []) {
    const option = fieldsOf(node, 'DefElem') as AstFields;
    const value = optionText(option)?.toLowerCase();
    if (option.defname === 'on_error') {
      if (value !== 'stop' && value !== 'ignore') throw new SqlError(SqlState.invalidParameterValue, `COPY ON_ERROR "${value}" not recognized`);
      handling.ignore = value === 'ignore';
    } else if (option.defname === 'log_verbosity') {
      if (value !== 'default' && value !== 'verbose' && value !== 'silent') throw new SqlError(SqlState.invalidParameterValue, `COPY LOG_VERBOSITY "${value}" not recognized`);
      handling.verbosity = value;
    }
  }
  return handling;
}

/** The NOTICE PostgreSQL 17 gives for each row ON_ERROR ignore skips, with LOG_VERBOSITY verbose. */
function skippedRowNotice(line: number, column: string, value: string): string {
  return `skipping row due to data type incompatibility at line ${line} for column "${column}": "${limitPrintout(value)}"`;
}

/** The NOTICE PostgreSQL gives after COPY … ON_ERROR ignore skipped rows. */
function skippedNotice(skipped: number): string {
  return skipped === 1 ? '1 row was skipped due to data type incompatibility' : `${skipped} rows were skipped due to data type incompatibility`;
}

/**
 * What every COPY into a stream shares: decoded chunks wait in a small queue
 * (the client is paused while it is full) for the views, which take them in
 * one transaction; a failed delivery refuses the rest of the data with its error.
 */
abstract class QueuedStreamSink<T> implements CopySink {
  abstract readonly columnCount: number;
  protected readonly queue = new AsyncQueue<T>(2);
  private delivered: Promise<number> = Promise.resolve(0);

  /** Starts the delivery of the queued chunks (call once, from the constructor). */
  protected deliver(delivery: Promise<number>): void {
    this.delivered = delivery;
    delivery.catch((err) => this.queue.fail(err));
  }

  /** Decodes a chunk of CopyData, queueing what is complete. */
  protected abstract decode(chunk: Buffer): void;
  /** The data ended: checks it ended cleanly and queues the rest. */
  protected abstract endOfData(): void;
  /** NOTICEs for the client once all is delivered. */
  protected notices(): string[] {
    return [];
  }

  get backlogged(): boolean {
    return this.queue.full;
  }

  drained(): Promise<void> {
    return this.queue.drained();
  }

  write(chunk: Buffer): void {
    const failed = this.queue.failed;
    if (failed) throw failed.reason;
    this.decode(chunk);
  }

  async finish(): Promise<StatementResult> {
    try {
      this.endOfData();
    } catch (err) {
      await this.abort(err);
      throw err;
    }
    this.queue.end();
    const tag = `COPY ${await this.delivered}`;
    const notices = this.notices();
    return notices.length ? { tag, notices } : { tag };
  }

  async abort(reason: unknown): Promise<void> {
    this.queue.fail(reason);
    await this.delivered.catch(() => undefined);
  }
}

/**
 * COPY into a stream: rows are decoded as they arrive and delivered to the
 * views in batches, all in one transaction, so a bad row anywhere fails the
 * whole COPY and leaves the views untouched (as PostgreSQL would), unless
 * ON_ERROR ignore leaves that row out.
 */
class StreamCopySink extends QueuedStreamSink<LinedBatch> {
  readonly columnCount: number;
  private readonly decoder: CopyDecoder;
  private readonly builder: BatchBuilder;
  private readonly errors: ErrorHandling;
  /** Rows ON_ERROR ignore left out. */
  private skipped = 0;
  /** LOG_VERBOSITY verbose: a notice per row left out, with its line (sorted by line at the end). */
  private readonly skippedRows: { line: number; notice: string }[] = [];
  /** The input line of each row the builder holds (ON_ERROR ignore), to name the lines the store refuses. */
  private lines: number[] = [];

  constructor(ctx: StatementContext, target: Extract<CopyTarget, { kind: 'stream' }>) {
    super();
    const positions = targetPositions(target.stream, copyColumns(target.stmt));
    const names = positions.map((p) => target.stream.columns[p].name);
    this.columnCount = positions.length;
    this.errors = copyErrorHandling(target.stmt);
    this.builder = new BatchBuilder(target.stream, positions);
    this.decoder = new CopyDecoder(positions.length, { ...copyFormatOptions(target.stmt, names), columnNames: names, relationName: target.stream.name, csvEndMarker: true }, (rows, lines) => {
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r];
        if (!this.errors.ignore) {
          this.builder.addTextRow(row);
        } else {
          const refused = this.builder.tryAddTextRow(row);
          if (refused) this.skip(lines[r], names[refused.index], row[refused.index] as string);
          else this.lines.push(lines[r]);
        }
        if (this.builder.pending >= batchRows) this.pushBatch();
      }
    });
    const batches = this.errors.ignore ? this.withoutInvalidRows(ctx, target.stream) : justBatches(this.queue);
    this.deliver(ctx.engine.ingest(ctx.conn, target.stream, batches, { validated: this.errors.ignore }));
  }

  private pushBatch(): void {
    const lines = this.lines;
    this.lines = [];
    this.queue.push({ batch: this.builder.take(), lines });
  }

  private skip(line: number, column: string, value: string): void {
    this.skipped++;
    if (this.errors.verbosity === 'verbose') this.skippedRows.push({ line, notice: skippedRowNotice(line, column, value) });
  }

  protected decode(chunk: Buffer): void {
    this.decoder.push(chunk);
  }

  protected endOfData(): void {
    this.decoder.end();
    if (this.builder.pending) this.pushBatch();
  }

  protected override notices(): string[] {
    if (!this.skipped || this.errors.verbosity === 'silent') return [];
    const rows = this.skippedRows.sort((a, b) => a.line - b.line).map((s) => s.notice);
    return [...rows, skippedNotice(this.skipped)];
  }

  /** ON_ERROR ignore: values only PostgreSQL can check are checked row by row, and failing rows are left out. */
  private async *withoutInvalidRows(ctx: StatementContext, stream: Stream): AsyncIterable<RowBatch> {
    for await (const { batch, lines } of this.queue) {
      const invalid = await ctx.engine.invalidRows(ctx.conn, stream, batch);
      if (invalid.size === 0) {
        yield batch;
        continue;
      }
      for (const [r, refused] of invalid) this.skip(lines[r], refused.column, refused.value);
      const keep = Array.from({ length: batch.length }, (_, r) => r).filter((r) => !invalid.has(r));
      yield { length: keep.length, columns: batch.columns.map((column) => keep.map((r) => column[r])) };
    }
  }
}

/** A batch of COPY rows and, where known, the input line of each. */
interface LinedBatch {
  batch: RowBatch;
  lines: number[];
}

async function* justBatches(queue: AsyncIterable<LinedBatch>): AsyncIterable<RowBatch> {
  for await (const { batch } of queue) yield batch;
}

/**
 * COPY FORMAT binary into a stream: tuples are split as they arrive; each
 * chunk's values are turned into text by their types' receive functions (the
 * engine's for integers, floats and booleans, PostgreSQL's for the rest) and
 * then go the way of any COPY, all in one transaction.
 */
class BinaryStreamCopySink extends QueuedStreamSink<BinaryRow[]> {
  readonly columnCount: number;
  readonly binary = true;
  private readonly decoder: BinaryCopyDecoder;
  private rows: BinaryRow[] = [];

  constructor(ctx: StatementContext, target: Extract<CopyTarget, { kind: 'stream' }>) {
    super();
    for (const node of (target.stmt.options as AstNode[] | undefined) ?? []) {
      const name = (fieldsOf(node, 'DefElem') as AstFields).defname as string;
      if (name !== 'format') throw new SqlError(SqlState.featureNotSupported, `COPY option "${name}" is not supported with FORMAT binary`);
    }
    const positions = targetPositions(target.stream, copyColumns(target.stmt));
    const oids = positions.map((p) => target.stream.columns[p].typeOid);
    this.columnCount = positions.length;
    this.decoder = new BinaryCopyDecoder(positions.length, (rows) => {
      for (const row of rows) this.rows.push(row);
      if (this.rows.length >= batchRows) this.queue.push(this.takeRows());
    });
    const builder = new BatchBuilder(target.stream, positions);
    this.deliver(ctx.engine.ingest(ctx.conn, target.stream, textBatches(ctx.conn, this.queue, oids, builder)));
  }

  protected decode(chunk: Buffer): void {
    this.decoder.push(chunk);
  }

  protected endOfData(): void {
    this.decoder.end();
    if (this.rows.length) this.queue.push(this.takeRows());
  }

  private takeRows(): BinaryRow[] {
    const rows = this.rows;
    this.rows = [];
    return rows;
  }
}

/** Chunks of binary rows as batches of stream rows: column by column through the receive functions. */
async function* textBatches(conn: StoreConnection, chunks: AsyncIterable<BinaryRow[]>, oids: readonly number[], builder: BatchBuilder): AsyncIterable<RowBatch> {
  for await (const rows of chunks) {
    const columns: (string | null)[][] = [];
    for (let c = 0; c < oids.length; c++) columns.push(await binaryTexts(conn, rows.map((row) => row[c]), rows.map(() => oids[c])));
    for (let r = 0; r < rows.length; r++) builder.addTextRow(columns.map((column) => column[r]));
    yield builder.take();
  }
}

/** COPY into an ordinary table: the data is handed to the store in one piece. */
class TableCopySink implements CopySink {
  readonly columnCount: number;
  readonly backlogged = false;
  private readonly chunks: Buffer[] = [];

  constructor(
    private readonly ctx: StatementContext,
    private readonly stmt: AstFields,
  ) {
    this.columnCount = copyColumns(stmt)?.length ?? 0;
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  write(chunk: Buffer): void {
    this.chunks.push(Buffer.from(chunk));
  }

  async finish(): Promise<StatementResult> {
    const copy = { fromStdin: deparse({ CopyStmt: this.stmt }), fromBlob: deparse({ CopyStmt: { ...this.stmt, filename: '/dev/blob' } }) };
    const data = Buffer.concat(this.chunks);
    const rows = await this.ctx.copyIntoTable(copy, isCsv(this.stmt) ? withoutCsvEndMarker(data) : data);
    return { tag: `COPY ${rows}` };
  }

  async abort(): Promise<void> {}
}
