import { batchParams, batchSource } from './batch-source.ts';
import { compile, jsonObject, NeedsStore, outputText, parsers, type Evaluator, type ExprType } from './expressions/index.ts';
import type { NonNullValue, Value } from './values/index.ts';
import type { RowBatch } from './batch.ts';
import { messageColumns, messagesSql, type KafkaSinkTarget } from './sinks.ts';
import { qualifiedName, quoteIdent } from './sql-text.ts';
import type { StoreConnection } from './store.ts';
import { arrivalTimestamp, type Stream } from './stream.ts';
import type { TransformPlan, ViewPlan } from './view-plan.ts';

/**
 * A continuous transform at run time: the store evaluates its SELECT over
 * each batch; the rows it returns go to the output function (a trigger on a
 * table, called with each row as NEW; Kafka topics) and to whatever reads its
 * output.
 */
export class ContinuousTransform {
  private readonly withClause: string;
  /** The transform's rows, typed, as a sub-select. */
  private readonly select: string;
  private readonly textRowsSql: string;
  private readonly triggerSql: string | undefined;

  constructor(
    readonly plan: ViewPlan & { transform: TransformPlan },
    readonly stream: Stream,
  ) {
    const { withClause, from } = batchSource(plan, stream);
    const where = plan.where ? ` WHERE ${plan.where}` : '';
    const outputs = plan.transform.outputs.map((o) => `(${o.sql})::${o.type} AS ${quoteIdent(o.name)}`);
    this.withClause = withClause;
    this.select = `SELECT ${outputs.join(', ')} FROM ${from}${where}`;
    this.textRowsSql = `${withClause}SELECT ${plan.transform.outputs.map((o) => `t.${quoteIdent(o.name)}::text`).join(', ')} FROM (${this.select}) AS t`;
    const table = plan.transform.triggerTable;
    this.triggerSql = table
      ? `${withClause}INSERT INTO ${qualifiedName(table.schema, table.name)} (${plan.transform.outputs.map((o) => quoteIdent(o.name)).join(', ')}) ${this.select}`
      : undefined;
    const compiled = plan.transform.compiled;
    this.compiled =
      compiled && !table
        ? { where: compiled.where && compile(compiled.where), outputs: compiled.outputs.map(compile), types: compiled.outputs.map((o) => o.type) }
        : undefined;
  }

  /** Whether the engine computes the rows (the store still does for a batch the engine cannot read alike, or a target it cannot render). */
  get aggregatesInEngine(): boolean {
    return this.compiled !== undefined;
  }

  /** Whether rendering the engine's rows needs the store's session in UTC (to_json and ::text print timestamptz in it). */
  get rendersTimestamptz(): boolean {
    return this.compiled?.types.includes('timestamptz') === true;
  }

  /** The batch's rows computed by the engine (values of the output types), or undefined when the store computes them. */
  evaluate(batch: RowBatch): EngineRows | undefined {
    const compiled = this.compiled;
    if (!compiled) return undefined;
    const rows: Value[][] = [];
    try {
      for (let r = 0; r < batch.length; r++) {
        if (compiled.where && compiled.where(batch, r) !== true) continue;
        rows.push(compiled.outputs.map((output) => output(batch, r)));
      }
    } catch (err) {
      if (err instanceof NeedsStore) return undefined;
      throw err;
    }
    return { names: this.outputNames, types: compiled.types, rows };
  }

  /** The engine's evaluation of the rows, when the transform compiled (no trigger output). */
  private readonly compiled: { where?: Evaluator; outputs: Evaluator[]; types: ExprType[] } | undefined;

  active = true;

  get name(): string {
    return this.plan.name;
  }

  get outputNames(): string[] {
    return this.plan.transform.outputs.map((o) => o.name);
  }

  /** The store's parameters for a batch (what every query of this transform reads). */
  params(batch: RowBatch): string[] {
    return batchParams(this.plan, this.stream, batch);
  }

  /** Calls the trigger-function output, if any, with each row. */
  async callTrigger(conn: StoreConnection, params: string[]): Promise<void> {
    const table = this.plan.transform.triggerTable;
    if (!this.triggerSql || !table) return;
    await conn.query(this.triggerSql, params);
    await conn.query(`DELETE FROM ${qualifiedName(table.schema, table.name)}`);
  }

  /** The transform's rows (text, in output column order). */
  async rows(conn: StoreConnection, params: string[]): Promise<(string | null)[][]> {
    return (await conn.query(this.textRowsSql, params)).rows;
  }

  /**
   * SQL selecting the Kafka messages of a batch written to a stream declared
   * on SERVER kafka: the rows take the stream's columns (as insert_into_stream
   * maps them) and types, cast from text as the stream's input would.
   */
  messagesSqlInto(stream: Stream, target: KafkaSinkTarget): string {
    const outputs = this.outputNames;
    const sources = stream.sourcesOf(outputs);
    const columns = stream.columns.map((column, c) => {
      const value = sources[c] >= 0 ? `t.${quoteIdent(outputs[sources[c]])}::text` : column.name === arrivalTimestamp ? 'now()::text' : 'NULL';
      return `(${value})::${column.type} AS ${quoteIdent(column.name)}`;
    });
    const rows = `(SELECT ${columns.join(', ')} FROM (${this.select}) AS t) AS s`;
    return `${this.withClause}${messagesSql(target, messageColumns(stream.columns.map((c) => c.name)), rows)}`;
  }

  /** SQL selecting the Kafka messages (key, value) of a batch for one of its topics. */
  messagesSql(target: KafkaSinkTarget): string {
    return `${this.withClause}${messagesSql(target, messageColumns(this.outputNames), `(${this.select}) AS t`)}`;
  }
}

/** Rows the engine computed for a transform, with their column names and types. */
export interface EngineRows {
  names: string[];
  types: ExprType[];
  rows: Value[][];
}

/** The target column types the engine renders (others leave the batch to the store's SQL). */
const renderedTypes: Record<string, ExprType> = {
  int2: 'int2', int4: 'int4', int8: 'int8', numeric: 'numeric', float8: 'float8', bool: 'bool', text: 'text', varchar: 'text', timestamptz: 'timestamptz', timestamp: 'timestamp',
};

/** SQL selecting messages given as two text arrays (keys, values): what KafkaSinks.write takes. */
export const givenMessagesSql = 'SELECT m.key, m.value FROM unnest($1::text[], $2::text[]) AS m(key, value)';

/**
 * A batch's Kafka messages (key, JSON value) rendered by the engine, for an
 * emit_tuple target or a stream declared on SERVER kafka (the rows then take
 * the stream's columns and types, cast as the stream's input would);
 * undefined when only the store's SQL renders them alike (CSV and text
 * formats, custom values, keys that are expressions, casts the engine lacks).
 */
export function engineMessages(rows: EngineRows, target: KafkaSinkTarget, stream?: Stream): { keys: (string | null)[]; values: string[] } | undefined {
  if (target.format !== 'json' || (target.value !== undefined && target.value !== null)) return undefined;
  let names = rows.names;
  let types = rows.types;
  let values = rows.rows;
  if (stream) {
    const sources = stream.sourcesOf(rows.names);
    const columns = stream.columns.map((column, c) => ({ column, from: sources[c], type: renderedTypes[column.typeName] }));
    if (columns.some((c) => !c.type)) return undefined;
    // As the SQL does it: the value's text read by the column's input function.
    const casts = columns.map((c) => {
      const from = c.from >= 0 ? rows.types[c.from] : undefined;
      return from === undefined || from === c.type ? (v: NonNullValue) => v : (v: NonNullValue) => parsers[c.type](outputText(from, v));
    });
    const kept = columns.filter((c) => c.column.name !== arrivalTimestamp);
    names = kept.map((c) => c.column.name);
    types = kept.map((c) => c.type);
    values = rows.rows.map((row) =>
      columns.flatMap((c, i) => {
        if (c.column.name === arrivalTimestamp) return [];
        const v = c.from >= 0 ? row[c.from] : null;
        return [v === null ? null : casts[i](v)];
      }),
    );
  }
  if (!stream && names.includes(arrivalTimestamp)) {
    // A message holds every column but arrival_timestamp (messageColumns).
    const kept = names.map((n, i) => (n === arrivalTimestamp ? -1 : i)).filter((i) => i >= 0);
    names = kept.map((i) => names[i]);
    types = kept.map((i) => types[i]);
    values = values.map((row) => kept.map((i) => row[i]));
  }
  const keyAt = target.key ? names.findIndex((n) => target.key === n || target.key === quoteIdent(n)) : -1;
  if (target.key && (keyAt < 0 || types[keyAt] === 'timestamptz')) return undefined;
  return {
    keys: values.map((row) => (keyAt < 0 || row[keyAt] === null ? null : outputText(types[keyAt], row[keyAt] as NonNullValue))),
    values: values.map((row) => jsonObject(names, types, row)),
  };
}
