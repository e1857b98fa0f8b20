import type { RowBatch } from './batch.ts';
import { batchParams, batchSource } from './batch-source.ts';
import { sketchAggregate, type SketchAggregate, type SketchState } from './sketch-aggregates.ts';
import { arrayLiteral, qualifiedName, quoteIdent } from './sql-text.ts';
import type { StoreConnection } from './store.ts';
import type { Stream } from './stream.ts';
import { singleRowKey, type AggregatePlan, type ViewPlan } from './view-plan.ts';

/**
 * Keeps a view's sketch aggregates up to date, per batch: the store
 * evaluates grouping keys and arguments (so any expression, WHERE and FILTER
 * work), the engine folds the values into sketches per group, reads the
 * stored sketches of those groups, merges, and writes back both the sketch
 * and the aggregate's result. Runs after the view's other aggregates were
 * merged, in the same transaction.
 */
export class SketchMerger {
  private readonly impls: SketchAggregate[];
  private readonly rowsSql: string;
  private readonly readSql: string;
  private readonly readSqlWithNulls: string;
  private readonly writeSql: string;

  constructor(
    private readonly plan: ViewPlan,
    private readonly sketches: AggregatePlan[],
    private readonly stream: Stream,
  ) {
    this.impls = sketches.map(sketchAggregate);
    this.rowsSql = this.buildRowsSql();
    this.readSql = this.buildReadSql(false);
    this.readSqlWithNulls = this.buildReadSql(true);
    this.writeSql = this.buildWriteSql();
  }

  async apply(conn: StoreConnection, batch: RowBatch): Promise<void> {
    const groups = await this.foldBatch(conn, batch);
    if (groups.size === 0) return;
    await this.mergeStored(conn, groups);
    const keyColumns: (string | null)[][] = this.plan.groups.map(() => []);
    const stateColumns: (string | null)[][] = this.impls.map(() => []);
    const resultColumns: (string | null)[][] = this.impls.map(() => []);
    for (const group of groups.values()) {
      group.key.forEach((k, g) => keyColumns[g].push(k));
      group.states.forEach((state, a) => {
        stateColumns[a].push(Buffer.from(this.impls[a].serialize(state)).toString('hex'));
        if (!this.impls[a].stateIsResult) resultColumns[a].push(this.impls[a].result(state));
      });
    }
    const results = resultColumns.filter((_, a) => !this.impls[a].stateIsResult);
    await conn.query(this.writeSql, [...keyColumns, ...stateColumns, ...results].map(arrayLiteral));
  }

  /** The batch's partial sketches per group (keyed by the groups' text form). */
  private async foldBatch(conn: StoreConnection, batch: RowBatch): Promise<Map<string, { key: (string | null)[]; states: SketchState[] }>> {
    const result = await conn.query(this.rowsSql, batchParams(this.plan, this.stream, batch));
    const groupCount = this.plan.groups.length;
    const groups = new Map<string, { key: (string | null)[]; states: SketchState[] }>();
    // Each sketch's columns: its argument, then its further per-row arguments.
    const offsets: number[] = [];
    let at = groupCount;
    for (const a of this.sketches) {
      offsets.push(at);
      at += 1 + (a.sketch?.rowArgs?.length ?? 0);
    }
    for (const row of result.rows) {
      const key = row.slice(0, groupCount);
      const id = groupId(key);
      let group = groups.get(id);
      if (!group) groups.set(id, (group = { key, states: this.impls.map((impl) => impl.create()) }));
      for (let a = 0; a < this.impls.length; a++) {
        const o = offsets[a];
        const value = row[o];
        const extra = this.sketches[a].sketch?.rowArgs ? row.slice(o + 1, o + 1 + (this.sketches[a].sketch?.rowArgs?.length ?? 0)) : noExtra;
        if (value !== null) this.impls[a].add(group.states[a], value, extra);
      }
    }
    return groups;
  }

  /** Merges the batch's sketches into the stored ones of the touched groups (the batch is the later: bucket_agg keeps the last). */
  private async mergeStored(conn: StoreConnection, groups: Map<string, { key: (string | null)[]; states: SketchState[] }>): Promise<void> {
    const keys = [...groups.values()].map((g) => g.key);
    const params = this.plan.groups.map((_, g) => arrayLiteral(keys.map((k) => k[g])));
    // Read, merge and write back is one writer at a time per view: FOR UPDATE cannot lock a group
    // that is not stored yet, and two sessions creating it at once would each overwrite the other.
    await conn.query(`SELECT pg_advisory_xact_lock(${SKETCH_WRITER_LOCK} * 4294967296 + $1::regclass::oid::int8)`, [this.mrel]);
    const stored = await conn.query(keys.some((k) => k.includes(null)) ? this.readSqlWithNulls : this.readSql, params);
    const groupCount = this.plan.groups.length;
    for (const row of stored.rows) {
      const group = groups.get(groupId(row.slice(0, groupCount)));
      if (!group) continue;
      for (let a = 0; a < this.impls.length; a++) {
        const hex = row[groupCount + a];
        if (!hex) continue;
        const merged = this.impls[a].deserialize(Buffer.from(hex.slice(2), 'hex'));
        this.impls[a].merge(merged, group.states[a]);
        group.states[a] = merged;
      }
    }
  }

  private get mrel(): string {
    return qualifiedName(this.plan.schema, this.plan.mrel);
  }

  /** Grouping keys and sketch arguments of every row of the batch, as text. */
  private buildRowsSql(): string {
    const { plan } = this;
    const { withClause, from } = batchSource(plan, this.stream);
    const keys = plan.groups.map((g) => `(${g.sql})::text`);
    const args = this.sketches.flatMap((a) => [
      a.filter ? `CASE WHEN ${a.filter} THEN (${a.argSql})::text END` : `(${a.argSql})::text`,
      ...(a.sketch?.rowArgs ?? []).map((sql) => `(${sql})::text`),
    ]);
    const where = plan.where ? ` WHERE ${plan.where}` : '';
    return `${withClause}SELECT ${[...keys, ...args].join(', ')} FROM ${from}${where}`;
  }

  /**
   * The stored sketches of the batch's groups. Keys are matched with `=`
   * (a hash join); only a batch holding a NULL key needs IS NOT DISTINCT
   * FROM, which PostgreSQL can only evaluate pair by pair.
   */
  private buildReadSql(nullKeys: boolean): string {
    const { plan } = this;
    const states = this.sketches.map((a) => `m.${quoteIdent(a.stateColumn as string)}::text`);
    if (plan.groups.length === 0) return `SELECT ${states.join(', ')} FROM ${this.mrel} AS m FOR UPDATE`;
    const keys = plan.groups.map((g) => `m.${quoteIdent(g.column)}::text`);
    const names = plan.groups.map((_, i) => `k${i + 1}`);
    const same = nullKeys ? 'IS NOT DISTINCT FROM' : '=';
    const join = plan.groups.map((g, i) => `m.${quoteIdent(g.column)} ${same} u.${names[i]}::${g.type}`).join(' AND ');
    return `SELECT ${[...keys, ...states].join(', ')} FROM ${this.mrel} AS m JOIN unnest(${names.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS u(${names.join(', ')}) ON ${join} FOR UPDATE OF m`;
  }

  private buildWriteSql(): string {
    const { plan } = this;
    const groupColumns = plan.groups.map((g) => g.column);
    const sketchColumns = this.sketches.flatMap((a, i) => (this.impls[i].stateIsResult ? [a.column] : [a.stateColumn as string, a.column]));
    const types = [...plan.groups.map((g) => g.type)];
    const n = plan.groups.length;
    const withResult = this.sketches.map((_, i) => i).filter((i) => !this.impls[i].stateIsResult);
    const names = [...plan.groups.map((_, i) => `k${i + 1}`), ...this.sketches.map((_, i) => `s${i + 1}`), ...withResult.map((i) => `r${i + 1}`)];
    const values = [
      ...types.map((t, i) => `u.k${i + 1}::${t}`),
      ...this.sketches.flatMap((_, i) =>
        this.impls[i].stateIsResult ? [`decode(u.s${i + 1}, 'hex')`] : [`decode(u.s${i + 1}, 'hex')`, `u.r${i + 1}::${this.impls[i].resultType}`],
      ),
    ];
    const conflict = `(${n ? groupColumns.map(quoteIdent).join(', ') : singleRowKey})`;
    const updates = sketchColumns.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ');
    return (
      `INSERT INTO ${this.mrel} AS m (${[...groupColumns, ...sketchColumns].map(quoteIdent).join(', ')}) ` +
      `SELECT ${values.join(', ')} FROM unnest(${names.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS u(${names.join(', ')}) ` +
      `ON CONFLICT ${conflict} DO UPDATE SET ${updates}`
    );
  }
}

const noExtra: readonly (string | null)[] = [];

/** The advisory-lock class of sketch writers (the object is the `_mrel`'s oid): an arbitrary constant of Sluice's. */
const SKETCH_WRITER_LOCK = 0x51c3;

function groupId(key: (string | null)[]): string {
  return key.map((k) => (k === null ? '\u0001' : `s${k}`)).join('\u0000');
}
