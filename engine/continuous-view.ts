import { aggregateImpl, type AggregateImpl, type Accumulator } from './aggregates.ts';
import type { RowBatch } from './batch.ts';
import { batchParams, batchSource } from './batch-source.ts';
import { compile, keyText, NeedsStore, type Evaluator, type Expr } from './expressions/index.ts';
import { distinctOnColumns, distinctOnConflictSql, distinctOnSelectSql } from './distinct-on.ts';
import { isSketchAggregate } from './sketch-aggregates.ts';
import { normalizeNumericText } from './sketches/index.ts';
import { SketchMerger } from './sketch-merge.ts';
import { arrayLiteral, qualifiedName, quoteIdent } from './sql-text.ts';
import type { StoreConnection } from './store.ts';
import { SqlError, SqlState } from './errors.ts';
import type { Stream } from './stream.ts';
import type { Value } from './values/index.ts';
import { singleRowKey, type ViewPlan } from './view-plan.ts';


/**
 * A continuous view at run time: turns each batch of stream rows into partial
 * aggregate states per group and merges them into the `_mrel` table with one
 * upsert. Rows are grouped and aggregated in JS when every grouping key and
 * argument is a plain column of a type the engine knows; otherwise the serving
 * store evaluates the batch, so any expression PostgreSQL accepts works.
 */
export class ContinuousView {
  readonly aggregates: AggregateImpl[];
  /** The plan without its sketch aggregates (which the SketchMerger keeps). */
  private readonly core: ViewPlan;
  private readonly sketches: SketchMerger | undefined;
  private readonly engineEvaluated: boolean;
  private readonly mergeSql: string;
  /** The rows mergeSql upserts (the groups' partial states): the output stream's delta. */
  private readonly mergeSelect: string;
  private readonly storeEvaluatedSql: string;
  /** The same for storeEvaluatedSql, when its rows are one per group (not DISTINCT ON or append-only). */
  private storeEvaluatedSelect: string | undefined;
  /** CTEs the store-evaluated upsert reads (the batch bound to the stream's name), or ''. */
  private storeWith = '';
  /** How the engine computes each grouping key, argument and FILTER, and WHERE (when it evaluates the batch). */
  private readonly groupValues: (Evaluator | undefined)[];
  private readonly argValues: (Evaluator | undefined)[];
  private readonly filters: (Evaluator | undefined)[];
  private readonly where: Evaluator | undefined;
  /** Per grouping key, what makes equal values one group when their texts differ (numeric 1.0 and 1.00). */
  private readonly sameGroup: (((v: Value) => Value) | undefined)[];
  active = true;

  constructor(
    readonly plan: ViewPlan,
    readonly stream: Stream,
  ) {
    const sketchPlans = plan.aggregates.filter(isSketchAggregate);
    this.core = { ...plan, aggregates: plan.aggregates.filter((a) => !isSketchAggregate(a)) };
    this.sketches = sketchPlans.length ? new SketchMerger(plan, sketchPlans, stream) : undefined;
    const core = this.core;
    this.aggregates = core.aggregates.map(aggregateImpl);
    this.groupValues = core.groups.map((g) => engineValue(stream, g.sourceColumn, g.compiled));
    this.argValues = core.aggregates.map((a) => engineValue(stream, a.sourceColumn, a.compiledArg));
    this.filters = core.aggregates.map((a) => (a.compiledFilter ? compile(a.compiledFilter) : undefined));
    this.where = core.compiledWhere ? compile(core.compiledWhere) : undefined;
    this.sameGroup = core.groups.map((g) => (g.typeName === 'numeric' ? (v: Value) => (v === null ? null : normalizeNumericText(v as string)) : undefined));
    this.engineEvaluated =
      (core.where === undefined || this.where !== undefined) &&
      core.from === undefined &&
      !core.appendOnly &&
      core.distinctOn === undefined &&
      core.groupingSets === undefined &&
      core.aggregates.every((a, i) => a.filter === undefined || this.filters[i] !== undefined) &&
      this.groupValues.every((v) => v !== undefined) &&
      core.aggregates.every((a, i) => (a.star || this.argValues[i] !== undefined) && this.aggregates[i].accumulator !== undefined);
    this.mergeSelect = this.buildMergeSelect();
    this.mergeSql = `${this.insertHead} ${this.mergeSelect}${this.lockOrder} ${this.conflictClause}`;
    this.storeEvaluatedSql = this.buildStoreEvaluatedSql();
  }

  get name(): string {
    return this.plan.name;
  }

  /** Whether batches are aggregated by the engine (true) or by the serving store. */
  get aggregatesInEngine(): boolean {
    return this.engineEvaluated;
  }

  /**
   * Merges a batch into the view. With `withChanges`, returns each changed
   * group's row before and after (PostgreSQL text of the view's row type,
   * null where there was none), for the view's output stream.
   */
  async apply(conn: StoreConnection, batch: RowBatch, withChanges = false): Promise<Change[]> {
    if (!this.active || batch.length === 0) return [];
    if (withChanges && this.plan.window) {
      // A window's rows are merged at read time: compare them before and after the batch.
      const before = await this.windowRows(conn);
      await this.apply(conn, batch, false);
      return windowChanges(before, await this.windowRows(conn));
    }
    let changes: Change[] = [];
    // With only sketch aggregates, the sketch merger creates the groups itself.
    if (this.core.aggregates.length > 0 || !this.sketches) {
      changes = this.engineEvaluated ? await this.applyInEngine(conn, batch, withChanges) : await this.applyInStore(conn, batch, withChanges);
    }
    await this.sketches?.apply(conn, batch);
    return changes;
  }

  /**
   * Runs an upsert (`withClause` holds the CTEs it reads, if any) or — when
   * changes are wanted — the upsert returning each changed group finalized
   * before and after (PostgreSQL 18's RETURNING old/new).
   */
  private async upsert(conn: StoreConnection, withClause: string, body: string, params: string[], withChanges: boolean, rows?: string): Promise<Change[]> {
    if (!withChanges) {
      await conn.query(`${withClause}${body}`, params);
      return [];
    }
    const finalize = qualifiedName(this.plan.schema, finalFunctionName(this.plan.name));
    const ctes = withClause ? `${withClause.trimEnd()}, ` : 'WITH ';
    // A new group has no old row: NULL, not a row of NULLs (`IS NULL` would also be true for the latter).
    const finalized = (row: string) => `CASE WHEN ${row} IS NOT DISTINCT FROM NULL THEN NULL ELSE ${finalize}(${row})::text END`;
    if (this.plan.outputDelta && rows !== undefined) return this.upsertWithDelta(conn, ctes, rows, params, finalized);
    const sql = `${ctes}changed AS (${body} RETURNING old, new) SELECT ${finalized('old')}, ${finalized('new')} FROM changed`;
    const result = await conn.query(sql, params);
    return result.rows.filter(([before, after]) => before !== after).map(([before, after]) => ({ before, after }));
  }

  /**
   * The upsert of `rows` (one per group), returning with each change the
   * group's partial state from this batch as an `_mrel` row: the output
   * stream's delta, which a view over output_of can combine().
   */
  private async upsertWithDelta(conn: StoreConnection, ctes: string, rows: string, params: string[], finalized: (row: string) => string): Promise<Change[]> {
    const plan = this.core;
    const columns = this.targetColumns.map(quoteIdent);
    const mrel = qualifiedName(plan.schema, plan.mrel);
    const sameGroup = plan.groups.length ? plan.groups.map((g) => `(changed.new).${quoteIdent(g.column)} IS NOT DISTINCT FROM p.${quoteIdent(g.column)}`).join(' AND ') : 'true';
    const sql =
      `${ctes}partial (${columns.join(', ')}) AS MATERIALIZED (${rows}), ` +
      `changed AS (${this.insertHead} SELECT * FROM partial${this.lockOrder} ${this.conflictClause} RETURNING old, new) ` +
      `SELECT ${finalized('changed.old')}, ${finalized('changed.new')}, jsonb_populate_record(NULL::${mrel}, to_jsonb(p))::text FROM changed LEFT JOIN partial p ON ${sameGroup}`;
    const result = await conn.query(sql, params);
    return result.rows.filter(([before, after]) => before !== after).map(([before, after, delta]) => ({ before, after, delta }));
  }

  private async applyInEngine(conn: StoreConnection, batch: RowBatch, withChanges: boolean): Promise<Change[]> {
    let params: string[];
    try {
      params = this.engineParams(batch);
    } catch (err) {
      // A row the engine cannot promise PostgreSQL's answer for (non-ASCII case mapping…): the store takes the batch.
      if (err instanceof NeedsStore) return this.applyInStore(conn, batch, withChanges);
      throw err;
    }
    if (params.length === 0) return [];
    return this.upsert(conn, '', this.mergeSql, params, withChanges, this.mergeSelect);
  }

  /** The batch aggregated per group, as the merge's parameters (none when no row passed WHERE). */
  private engineParams(batch: RowBatch): string[] {
    const groups = this.aggregate(batch);
    return groups.size === 0 ? [] : this.groupParams(groups);
  }

  /** Groups and their partial states as the merge's parameters: one text array per column. */
  private groupParams(groups: PendingGroups): string[] {
    const plan = this.core;
    const keyColumns: (string | null)[][] = plan.groups.map(() => []);
    const stateColumns: (string | null)[][] = this.aggregates.map(() => []);
    for (const group of groups.values()) {
      for (let g = 0; g < keyColumns.length; g++) {
        const value = group.key[g];
        keyColumns[g].push(value === null ? null : keyText(plan.groups[g].typeName, value));
      }
      for (let a = 0; a < stateColumns.length; a++) {
        stateColumns[a].push((this.aggregates[a].accumulator as Accumulator).text(group.states[a]));
      }
    }
    return [...keyColumns, ...stateColumns].map(arrayLiteral);
  }

  /**
   * Groups a batch and folds each row passing WHERE into its group's partial
   * states, in `groups` (a fresh Map by default). Every expression is
   * evaluated before any state changes, so a row only the store can evaluate
   * (NeedsStore) leaves `groups` as it was.
   */
  private aggregate(batch: RowBatch, groups: PendingGroups = new Map()): PendingGroups {
    const evaluated = this.evaluateRows(batch);
    const { rows, keys, args, passes } = evaluated;
    const accumulators = this.aggregates.map((a) => a.accumulator as Accumulator);
    const keyCount = keys.length;
    const single = keyCount === 1;
    const key: Value[] = keys.map(() => null);
    const groupedBy: Value[] = keys.map(() => null);
    const sameGroup = this.sameGroup;
    for (let i = 0; i < rows; i++) {
      for (let g = 0; g < keyCount; g++) {
        key[g] = keys[g][i];
        const normalize = sameGroup[g];
        groupedBy[g] = normalize ? normalize(key[g]) : key[g];
      }
      const mapKey = single ? groupedBy[0] : keyCount === 0 ? 0 : compositeKey(groupedBy);
      let group = groups.get(mapKey);
      if (!group) {
        group = { key: key.slice(), states: accumulators.map((acc) => acc.init()) };
        groups.set(mapKey, group);
      }
      const states = group.states;
      for (let a = 0; a < accumulators.length; a++) {
        const pass = passes[a];
        if (pass && !pass[i]) continue;
        const arg = args[a];
        states[a] = accumulators[a].add(states[a], arg ? arg[i] : null);
      }
    }
    return groups;
  }

  /** The grouping keys, arguments and FILTER outcomes of the rows passing WHERE, column by column. */
  private evaluateRows(batch: RowBatch): { rows: number; keys: Value[][]; args: (Value[] | undefined)[]; passes: (boolean[] | undefined)[] } {
    const where = this.where;
    let selected: number[] | undefined;
    if (where) {
      selected = [];
      for (let r = 0; r < batch.length; r++) if (where(batch, r) === true) selected.push(r);
    }
    const rowsOf = selected;
    const column = (evaluate: Evaluator): Value[] => {
      const p = plainColumn(evaluate);
      // Every row, straight from the stream column: nothing to copy.
      if (!rowsOf && p !== undefined) return batch.columns[p];
      if (!rowsOf) return Array.from({ length: batch.length }, (_, r) => evaluate(batch, r));
      return rowsOf.map((r) => evaluate(batch, r));
    };
    const each = (evaluate: Evaluator): boolean[] => (rowsOf ?? Array.from({ length: batch.length }, (_, r) => r)).map((r) => evaluate(batch, r) === true);
    return {
      rows: rowsOf ? rowsOf.length : batch.length,
      keys: (this.groupValues as Evaluator[]).map(column),
      args: this.argValues.map((arg) => (arg ? column(arg) : undefined)),
      passes: this.filters.map((filter) => (filter ? each(filter) : undefined)),
    };
  }

  /** Whether batches can be folded in memory across a statement and written once (see `fold`). */
  get foldsInMemory(): boolean {
    return this.active && this.engineEvaluated && !this.sketches && !this.plan.window;
  }

  /**
   * Folds a batch into partial states kept in memory (the chunks of one COPY
   * or INSERT), to be written with one upsert by `flush`; false, folding
   * nothing, when a row needs the store (apply that batch instead).
   */
  fold(batch: RowBatch, pending: PendingGroups): boolean {
    try {
      this.aggregate(batch, pending);
      return true;
    } catch (err) {
      if (err instanceof NeedsStore) return false;
      throw err;
    }
  }

  /** Writes folded partial states with one upsert; returns the changed groups when asked. */
  async flush(conn: StoreConnection, pending: PendingGroups, withChanges: boolean): Promise<Change[]> {
    if (pending.size === 0) return [];
    return this.upsert(conn, '', this.mergeSql, this.groupParams(pending), withChanges, this.mergeSelect);
  }

  private async applyInStore(conn: StoreConnection, batch: RowBatch, withChanges: boolean): Promise<Change[]> {
    return this.upsert(conn, this.storeWith, this.storeEvaluatedSql, batchParams(this.core, this.stream, batch), withChanges, this.storeEvaluatedSelect);
  }

  /** A sliding-window view's rows at `at` (default: now, as reading the view sees it), keyed by group. */
  async windowRows(conn: StoreConnection, at?: string): Promise<Map<string, string>> {
    const fn = qualifiedName(this.plan.schema, windowFunctionName(this.plan.name));
    const result = at === undefined ? await conn.query(`SELECT key, "row"::text FROM ${fn}(sluice.now())`) : await conn.query(`SELECT key, "row"::text FROM ${fn}($1::timestamptz)`, [at]);
    return new Map(result.rows.map(([key, row]) => [key as string, row as string]));
  }

  /**
   * pipelinedb.combine_table: merges the rows of a table shaped like the
   * `_mrel` (group columns and states) into the view, as if they had been
   * computed from the stream. Returns the number of rows read.
   */
  async combineTable(conn: StoreConnection, table: string): Promise<number> {
    if (this.sketches) throw new SqlError(SqlState.featureNotSupported, `combine_table into ${this.name}, which keeps sketches, is not supported`);
    const columns = this.targetColumns.map(quoteIdent).join(', ');
    const result = await conn.query(`${this.insertHead} SELECT ${columns} FROM ${table} ${this.conflictClause}`);
    return Number(result.command.split(' ')[2] ?? 0);
  }

  private get targetColumns(): string[] {
    const plan = this.core;
    return [...plan.groups.map((g) => g.column), ...plan.aggregates.map((a) => a.column), ...(plan.distinctOn ? distinctOnColumns(plan.distinctOn) : [])];
  }

  private get conflictClause(): string {
    const plan = this.core;
    if (plan.distinctOn) return distinctOnConflictSql(plan, plan.distinctOn, 'm');
    const keys = plan.groups.length ? plan.groups.map((g) => quoteIdent(g.column)) : [singleRowKey];
    const updates = plan.aggregates.map((a, i) => {
      const column = quoteIdent(a.column);
      return `${column} = ${this.aggregates[i].combineSql(`m.${column}`, `EXCLUDED.${column}`)}`;
    });
    // Grouping without aggregates (SELECT DISTINCT, GROUP BY alone): a known group stays as it is.
    if (updates.length === 0) return `ON CONFLICT (${keys.join(', ')}) DO NOTHING`;
    return `ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
  }

  private get insertHead(): string {
    const plan = this.core;
    return `INSERT INTO ${qualifiedName(plan.schema, plan.mrel)} AS m (${this.targetColumns.map(quoteIdent).join(', ')})`;
  }

  /**
   * Upsert of partial states computed by the engine: one text-array parameter
   * per column, each element cast to the column's type (states may be arrays,
   * which a multi-dimensional array parameter could not carry).
   */
  private buildMergeSelect(): string {
    const plan = this.core;
    const types = [...plan.groups.map((g) => g.type), ...this.aggregates.map((a) => a.stateType)];
    const names = types.map((_, i) => `c${i + 1}`);
    const casts = types.map((t, i) => `u.${names[i]}::${t}`);
    const arrays = types.map((_, i) => `$${i + 1}::text[]`);
    return `SELECT ${casts.join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${names.join(', ')})`;
  }

  /**
   * Groups are upserted in key order, so sessions writing overlapping groups
   * of one view at once (clients, Kafka sources) take their row locks in the
   * same order and wait for each other instead of deadlocking.
   */
  private get lockOrder(): string {
    const groups = this.core.groups.length;
    return groups === 0 ? '' : ` ORDER BY ${Array.from({ length: groups }, (_, i) => i + 1).join(', ')}`;
  }

  /** Upsert where the serving store evaluates and aggregates the batch itself. */
  private buildStoreEvaluatedSql(): string {
    const plan = this.core;
    const { withClause, from } = batchSource(plan, this.stream);
    const keys = plan.groups.map((g) => g.sql);
    const partials = plan.aggregates.map((a, i) => this.aggregates[i].partialSql(a.argSql ?? '', a.filter));
    const where = plan.where ? ` WHERE ${plan.where}` : '';
    this.storeWith = withClause;
    if (plan.appendOnly) return `${this.insertHead} SELECT ${keys.join(', ')} FROM ${from}${where}`;
    if (plan.distinctOn) return `${this.insertHead} ${distinctOnSelectSql(plan, plan.distinctOn, from, where)} ${this.conflictClause}`;
    const grouping = plan.groups.length
      ? ` GROUP BY ${plan.groups.map((_, i) => i + 1).join(', ')}`
      : ' HAVING count(*) > 0';
    this.storeEvaluatedSelect = `SELECT ${[...keys, ...partials].join(', ')} FROM ${from}${where}${grouping}`;
    return `${this.insertHead} ${this.storeEvaluatedSelect}${this.lockOrder} ${this.conflictClause}`;
  }
}

/** Groups and their partial states, folded in memory until written (key: the group's identity). */
export type PendingGroups = Map<unknown, { key: Value[]; states: unknown[] }>;

/** A changed group of a view: its row before and after, as PostgreSQL text of the view's row type. */
export interface Change {
  before: string | null;
  after: string | null;
  /** The group's partial state from this batch as an `_mrel` row (output streams with a delta column). */
  delta?: string | null;
}

/** The differences between a window's rows at two instants (a group gone: new is NULL). */
export function windowChanges(before: Map<string, string>, after: Map<string, string>): Change[] {
  const changes: Change[] = [];
  for (const [key, row] of after) if (before.get(key) !== row) changes.push({ before: before.get(key) ?? null, after: row });
  for (const [key, row] of before) if (!after.has(key)) changes.push({ before: row, after: null });
  return changes;
}

/** The SQL function that turns an `_mrel` row into the view's row. */
export function finalFunctionName(view: string): string {
  return `${view}_final`;
}

/** The SQL function giving a sliding-window view's rows at an instant, keyed by group. */
export function windowFunctionName(view: string): string {
  return `${view}_window`;
}

/** The output stream of a view (`output_of('v')`), a stream named like PipelineDB's. */
export function outputStreamName(view: string): string {
  return `${view}_osrel`;
}

function compositeKey(values: Value[]): string {
  let key = '';
  for (const v of values) {
    key += v === null ? '\u0001' : typeof v === 'string' ? `s${v}` : `${typeof v}${String(v)}`;
    key += '\u0000';
  }
  return key;
}

/** A plain column the engine reads as typed values, or a compiled expression; undefined when the store must evaluate it. */
function engineValue(stream: Stream, sourceColumn: string | undefined, compiled: Expr | undefined): Evaluator | undefined {
  if (compiled) return compile(compiled);
  const p = sourceColumn === undefined ? undefined : stream.position(sourceColumn);
  if (p === undefined || stream.inputs[p] === undefined) return undefined;
  return Object.assign((batch: RowBatch, r: number) => batch.columns[p][r], { column: p });
}

/** The stream column a plain-column evaluator reads, so a whole batch can take the column as it is. */
function plainColumn(evaluate: Evaluator | undefined): number | undefined {
  return (evaluate as { column?: number } | undefined)?.column;
}
