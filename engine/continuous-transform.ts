import { batchParams, batchSource } from './batch-source.ts';
import type { RowBatch } from './batch.ts';
import { qualifiedName, quoteIdent } from './sql-text.ts';
import type { StoreConnection } from './store.ts';
import type { Stream } from './stream.ts';
import type { TransformPlan, ViewPlan } from './view-plan.ts';

/**
 * A continuous transform at run time: the store evaluates its SELECT over
 * each batch; the rows it returns go to the output function (a trigger on a
 * table, called with each row as NEW) and to whatever reads its output.
 */
export class ContinuousTransform {
  private readonly selectSql: string;
  private readonly triggerSql: string | undefined;

  constructor(
    readonly plan: ViewPlan & { transform: TransformPlan },
    readonly stream: Stream,
  ) {
    const { withClause, from } = batchSource(plan, stream);
    const where = plan.where ? ` WHERE ${plan.where}` : '';
    const outputs = plan.transform.outputs.map((o) => `(${o.sql})::${o.type} AS ${quoteIdent(o.name)}`);
    const select = `SELECT ${outputs.join(', ')} FROM ${from}${where}`;
    this.selectSql = `${withClause}SELECT ${plan.transform.outputs.map((o) => `t.${quoteIdent(o.name)}::text`).join(', ')} FROM (${select}) AS t`;
    const table = plan.transform.triggerTable;
    this.triggerSql = table
      ? `${withClause}INSERT INTO ${qualifiedName(table.schema, table.name)} (${plan.transform.outputs.map((o) => quoteIdent(o.name)).join(', ')}) ${select}`
      : undefined;
  }

  active = true;

  get name(): string {
    return this.plan.name;
  }

  /** Runs the transform over a batch; returns its rows (text, in output column order). */
  async apply(conn: StoreConnection, batch: RowBatch): Promise<(string | null)[][]> {
    if (!this.active || batch.length === 0) return [];
    const params = batchParams(this.plan, this.stream, batch);
    const table = this.plan.transform.triggerTable;
    if (this.triggerSql && table) {
      await conn.query(this.triggerSql, params);
      await conn.query(`DELETE FROM ${qualifiedName(table.schema, table.name)}`);
    }
    return (await conn.query(this.selectSql, params)).rows;
  }
}
