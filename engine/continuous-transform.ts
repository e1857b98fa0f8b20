import { batchParams, batchSource } from './batch-source.ts';
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
  }

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
