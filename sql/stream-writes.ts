import type { RowBatch } from '../engine/batch.ts';
import { SqlError, SqlState } from '../engine/errors.ts';
import { quoteIdent } from '../engine/sql-text.ts';
import { arrivalTimestamp, type Stream } from '../engine/stream.ts';
import type { Value } from '../engine/values/index.ts';
import type { AstFields, AstNode } from './ast.ts';
import { deparse, fieldsOf, isStar, nodeKind, stringValue } from './ast.ts';
import type { StatementContext, StatementResult } from './context.ts';

/** Rows per batch handed to the engine: big enough to amortize a store round trip, small enough to bound memory. */
export const batchRows = 65536;

/** Target columns of a write, as positions in the stream (all user columns when none are listed). */
export function targetPositions(stream: Stream, columns: string[] | undefined): number[] {
  if (!columns) {
    return stream.columns.map((_, i) => i).filter((i) => stream.columns[i].name !== arrivalTimestamp);
  }
  return columns.map((name) => {
    const position = stream.position(name);
    if (position === undefined) {
      throw new SqlError(SqlState.undefinedColumn, `column "${name}" of relation "${stream.name}" does not exist`);
    }
    return position;
  });
}

/**
 * Builds batches of typed stream rows from rows of text values (COPY, query
 * results): each value goes through its column's input function, columns
 * not written are NULL, and arrival_timestamp is the time the row is read.
 */
export class BatchBuilder {
  private batch: RowBatch;
  private readonly arrivalPosition: number | undefined;
  private readonly fillArrival: boolean;

  constructor(
    private readonly stream: Stream,
    private readonly positions: number[],
  ) {
    this.batch = this.fresh();
    this.arrivalPosition = stream.position(arrivalTimestamp);
    this.fillArrival = this.arrivalPosition !== undefined && !positions.includes(this.arrivalPosition);
  }

  get pending(): number {
    return this.batch.length;
  }

  addTextRow(values: readonly (string | null)[]): void {
    const { columns } = this.batch;
    const inputs = this.stream.inputs;
    for (let i = 0; i < this.positions.length; i++) {
      const position = this.positions[i];
      const text = values[i];
      const input = inputs[position];
      columns[position].push(text === null || text === undefined ? null : input ? input(text) : text);
    }
    this.finishRow();
  }

  /**
   * Adds a row unless a value fails its column's input function (COPY's
   * ON_ERROR ignore): then nothing is added and the error is returned. The
   * whole row is typed before any column grows, where addTextRow (the hot
   * path of every COPY) pushes each value straight into its column.
   */
  tryAddTextRow(values: readonly (string | null)[]): { index: number; error: SqlError } | undefined {
    const inputs = this.stream.inputs;
    const typed: Value[] = new Array(this.positions.length);
    for (let i = 0; i < this.positions.length; i++) {
      const text = values[i];
      const input = inputs[this.positions[i]];
      try {
        typed[i] = text === null || text === undefined ? null : input ? input(text) : text;
      } catch (err) {
        if (err instanceof SqlError && err.code.startsWith('22')) return { index: i, error: err };
        throw err;
      }
    }
    this.addValueRow(typed);
    return undefined;
  }

  addValueRow(values: readonly Value[]): void {
    const { columns } = this.batch;
    for (let i = 0; i < this.positions.length; i++) columns[this.positions[i]].push(values[i]);
    this.finishRow();
  }

  private finishRow(): void {
    const batch = this.batch;
    batch.length++;
    for (let c = 0; c < batch.columns.length; c++) {
      const column = batch.columns[c];
      if (column.length < batch.length) column.push(c === this.arrivalPosition && this.fillArrival ? this.now() : null);
    }
    // A row's arrival_timestamp given as NULL (postgres_fdw sends every column) is when it arrived, as when not given.
    const arrival = this.arrivalPosition;
    if (arrival !== undefined && !this.fillArrival && batch.columns[arrival][batch.length - 1] === null) batch.columns[arrival][batch.length - 1] = this.now();
  }

  private arrival: string | undefined;
  private now(): string {
    this.arrival ??= new Date().toISOString();
    return this.arrival;
  }

  /** Hands over the rows built so far and starts a new batch. */
  take(): RowBatch {
    const batch = this.batch;
    this.batch = this.fresh();
    this.arrival = undefined;
    return batch;
  }

  private fresh(): RowBatch {
    return { length: 0, columns: this.stream.columns.map(() => []) };
  }
}

function columnNames(stmt: AstFields): string[] | undefined {
  const cols = stmt.cols as AstNode[] | undefined;
  return cols?.map((c) => (fieldsOf(c, 'ResTarget') as AstFields).name as string);
}

/** `INSERT INTO stream …`: returns once every view reading the stream reflects the rows. */
export async function insertIntoStream(ctx: StatementContext, stream: Stream, stmt: AstFields): Promise<StatementResult> {
  // PostgreSQL 18's parse tree has returningClause (RETURNING OLD/NEW); older ones returningList.
  if (stmt.returningClause || stmt.returningList) throw new SqlError(SqlState.featureNotSupported, 'RETURNING is not supported for an INSERT into a stream', { hint: 'A stream stores no rows to return.' });
  if (stmt.onConflictClause) throw new SqlError(SqlState.featureNotSupported, 'ON CONFLICT is not supported for an INSERT into a stream');
  const positions = targetPositions(stream, columnNames(stmt));
  const select = fieldsOf(stmt.selectStmt, 'SelectStmt');
  const builder = new BatchBuilder(stream, positions);
  if (!select || stmt.withClause || !constantRows(ctx, stream, positions, select, builder)) {
    // `WITH x AS (…) INSERT INTO s SELECT … FROM x`: the CTEs belong to the SELECT that gives the rows.
    const source = stmt.withClause && select && !select.withClause ? { SelectStmt: { ...select, withClause: stmt.withClause } } : stmt.selectStmt;
    await rowsFromStore(ctx, stream, positions, source as AstNode, builder);
  }
  const batch = builder.take();
  await ctx.engine.ingest(ctx.conn, stream, [batch]);
  return { tag: `INSERT 0 ${batch.length}` };
}

/**
 * The fast path for `VALUES` lists of literals and parameters: each value is
 * read with the column's input function, as PostgreSQL does for an untyped
 * literal. Returns false (having added nothing) when a value needs the store.
 */
function constantRows(ctx: StatementContext, stream: Stream, positions: number[], select: AstFields, builder: BatchBuilder): boolean {
  const lists = select.valuesLists as AstNode[] | undefined;
  if (!lists || select.withClause) return false;
  const rows: (string | null)[][] = [];
  for (const list of lists) {
    const items = (fieldsOf(list, 'List')?.items as AstNode[] | undefined) ?? [];
    if (items.length > positions.length) throw new SqlError(SqlState.syntaxError, 'INSERT has more expressions than target columns');
    if (items.length < positions.length) throw new SqlError(SqlState.syntaxError, 'INSERT has more target columns than expressions');
    const row: (string | null)[] = [];
    for (let i = 0; i < items.length; i++) {
      const text = literalText(ctx, items[i], stream.columns[positions[i]].typeName);
      if (text === undefined) return false;
      row.push(text);
    }
    rows.push(row);
  }
  for (const row of rows) builder.addTextRow(row);
  return true;
}

const numberTargets = new Set(['int2', 'int4', 'int8', 'float4', 'float8', 'numeric', 'text', 'varchar', 'bpchar']);
const fractionTargets = new Set(['float4', 'float8', 'numeric']);

/** A literal's text as the column's input function should read it, or undefined when only the store can say. */
function literalText(ctx: StatementContext, item: AstNode, typeName: string): string | null | undefined {
  const kind = nodeKind(item);
  if (kind === 'ParamRef') {
    const number = ((item.ParamRef as AstFields).number as number) ?? 0;
    if (number < 1 || number > ctx.params.length) return undefined;
    return ctx.params[number - 1];
  }
  if (kind === 'SetToDefault') return null;
  const constant = fieldsOf(item, 'A_Const');
  if (!constant) return undefined;
  if (constant.isnull) return null;
  if (constant.sval) return stringValue({ String: constant.sval }) ?? '';
  if (constant.ival) return numberTargets.has(typeName) ? String((constant.ival as { ival?: number }).ival ?? 0) : undefined;
  if (constant.fval) return fractionTargets.has(typeName) ? ((constant.fval as { fval: string }).fval) : undefined;
  if (constant.boolval) return typeName === 'bool' ? ((constant.boolval as { boolval?: boolean }).boolval ? 't' : 'f') : undefined;
  return undefined;
}

/** Runs the INSERT's VALUES or SELECT in the serving store, coercing each column to the stream's type. */
async function rowsFromStore(ctx: StatementContext, stream: Stream, positions: number[], source: AstNode, builder: BatchBuilder): Promise<void> {
  const aliases = positions.map((_, i) => `c${i + 1}`);
  const casts = positions.map((p, i) => `s.${aliases[i]}::${stream.columns[p].type}::text`);
  const types = positions.map((p) => stream.columns[p].type);
  const sql = `SELECT ${casts.join(', ')} FROM (${typedSource(source, types)}) AS s(${aliases.map(quoteIdent).join(', ')})`;
  const result = await ctx.conn.query(sql, ctx.params);
  for (const row of result.rows) builder.addTextRow(row);
}

/**
 * The rows' SQL with each value cast to its column's type where it is
 * written, as PostgreSQL types an INSERT's VALUES and select list: a
 * `ROW(1, 2)` for a composite column is then that type, not an anonymous
 * record that could no longer be cast. A select list with `*` stays as is.
 */
function typedSource(source: AstNode, types: string[]): string {
  const select = fieldsOf(source, 'SelectStmt');
  if (!select || (select.op && select.op !== 'SETOP_NONE')) return deparse(source);
  const casts: string[] = [];
  const cast = (item: AstNode, i: number): AstNode => {
    if (i >= types.length || nodeKind(item) === 'SetToDefault') return item;
    casts.push(`(${deparse(item)})::${types[i]}`);
    return { ColumnRef: { fields: [{ String: { sval: `sluice_typed_${casts.length - 1}` } }] } };
  };
  const lists = select.valuesLists as AstNode[] | undefined;
  const targets = select.targetList as AstNode[] | undefined;
  let typed: AstFields;
  if (lists) {
    typed = { ...select, valuesLists: lists.map((l) => ({ List: { items: ((fieldsOf(l, 'List')?.items as AstNode[]) ?? []).map(cast) } })) };
  } else if (targets && !targets.some((t) => isStar((fieldsOf(t, 'ResTarget') as AstFields).val))) {
    typed = { ...select, targetList: targets.map((t, i) => ({ ResTarget: { ...(fieldsOf(t, 'ResTarget') as AstFields), val: cast((fieldsOf(t, 'ResTarget') as AstFields).val as AstNode, i) } })) };
  } else {
    return deparse(source);
  }
  return deparse({ SelectStmt: typed }).replace(/\bsluice_typed_(\d+)\b/g, (_, i: string) => casts[Number(i)]);
}
