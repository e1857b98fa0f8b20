import type { RowBatch } from './batch.ts';
import { ContinuousTransform, engineMessages, givenMessagesSql, type EngineRows } from './continuous-transform.ts';
import { NeedsStore, outputText } from './expressions/index.ts';
import { ContinuousView, outputStreamName, type Change, type PendingGroups } from './continuous-view.ts';
import { SqlError, SqlState } from './errors.ts';
import { arrayLiteral } from './sql-text.ts';
import { certainlyValidDateTime } from './values/index.ts';
import { inTransaction, type StoreConnection } from './store.ts';
import { Stream, streamKey } from './stream.ts';
import { messageColumns, messagesSql, streamSinkTarget, type KafkaSinks, type KafkaSinkTarget } from './sinks.ts';
import type { ViewPlan } from './view-plan.ts';
import { batchParams, batchSource } from './batch-source.ts';
import { ChangeFeed } from './change-feed.ts';
import { PipelineStats } from './stats.ts';

/**
 * The runtime: the streams, the continuous views reading them, and the
 * delivery of each batch of stream rows to those views in one transaction.
 */
export class Engine {
  private readonly streams = new Map<string, Stream>();
  private readonly views = new Map<string, ContinuousView>();
  private readonly transforms = new Map<string, ContinuousTransform>();
  private names: Set<string> | undefined;
  /** Where rows for Kafka topics go (set when the server runs with Kafka support). */
  sinks: KafkaSinks | undefined;
  /** Committed changes of views, for SUBSCRIBE and LISTEN clients. */
  readonly changes = new ChangeFeed();
  /** Rows, batches, times and errors per stream and view (pipelinedb.stream_stats, query_stats). */
  readonly stats = new PipelineStats();

  stream(schema: string, name: string): Stream | undefined {
    return this.streams.get(streamKey(schema, name));
  }

  view(schema: string, name: string): ContinuousView | undefined {
    return this.views.get(streamKey(schema, name));
  }

  allStreams(): Stream[] {
    return [...this.streams.values()];
  }

  allViews(): ContinuousView[] {
    return [...this.views.values()];
  }

  transform(schema: string, name: string): ContinuousTransform | undefined {
    return this.transforms.get(streamKey(schema, name));
  }

  allTransforms(): ContinuousTransform[] {
    return [...this.transforms.values()];
  }

  /** Lower-cased names of every stream (a statement naming none, and no DDL, is not the engine's). */
  streamNames(): ReadonlySet<string> {
    this.names ??= new Set([...this.streams.values()].map((s) => s.name.toLowerCase()));
    return this.names;
  }

  /** Replaces the set of streams (after DDL changed them); views keep their plans. */
  setStreams(streams: Stream[]): void {
    this.names = undefined;
    this.streams.clear();
    for (const s of streams) this.streams.set(s.key, s);
    for (const reader of [...this.views.values(), ...this.transforms.values()]) {
      const stream = this.streams.get(streamKey(reader.plan.stream.schema, reader.plan.stream.name));
      if (stream && stream !== reader.stream) this.addView(reader.plan).active = reader.active;
    }
  }

  /** Registers a continuous view or transform (replacing one of the same name). */
  addView(plan: ViewPlan): ContinuousView | ContinuousTransform {
    const stream = this.stream(plan.stream.schema, plan.stream.name);
    if (!stream) throw new Error(`stream ${plan.stream.schema}.${plan.stream.name} of view ${plan.name} is missing`);
    const key = streamKey(plan.schema, plan.name);
    if (plan.transform) {
      const transform = new ContinuousTransform({ ...plan, transform: plan.transform }, stream);
      this.transforms.set(key, transform);
      return transform;
    }
    const view = new ContinuousView(plan, stream);
    const replaced = this.views.get(key);
    if (replaced) this.changes.viewRemoved(replaced);
    this.views.set(key, view);
    return view;
  }

  removeView(schema: string, name: string): void {
    this.stats.forget(schema, name);
    const view = this.views.get(streamKey(schema, name));
    if (view) this.changes.viewRemoved(view);
    this.views.delete(streamKey(schema, name));
    this.transforms.delete(streamKey(schema, name));
  }

  /**
   * The views and transforms fed by a stream, down the chain of output
   * streams (and, unless `throughTransforms` is false, of the streams
   * transforms write to).
   */
  fedBy(stream: Stream, throughTransforms = true, seen = new Set<Stream>()): { views: ContinuousView[]; transforms: ContinuousTransform[] } {
    const fed = { views: [] as ContinuousView[], transforms: [] as ContinuousTransform[] };
    if (seen.has(stream)) return fed;
    seen.add(stream);
    const follow = (next: Stream | undefined) => {
      if (!next) return;
      const more = this.fedBy(next, throughTransforms, seen);
      fed.views.push(...more.views);
      fed.transforms.push(...more.transforms);
    };
    for (const reader of this.readersOf(stream)) {
      if (reader instanceof ContinuousTransform) {
        fed.transforms.push(reader);
        if (throughTransforms) for (const into of reader.plan.transform.insertInto) follow(this.stream(into.schema, into.name));
      } else {
        fed.views.push(reader);
      }
      follow(this.stream(reader.plan.schema, outputStreamName(reader.plan.name)));
    }
    return fed;
  }

  /** The continuous views and transforms reading a stream. */
  readersOf(stream: Stream): (ContinuousView | ContinuousTransform)[] {
    return [...this.views.values(), ...this.transforms.values()].filter((v) => v.stream.key === stream.key);
  }

  /**
   * Delivers rows to every view reading the stream, atomically: either all
   * views reflect the batch or (on any error) none does.
   */
  async ingest(
    conn: StoreConnection,
    stream: Stream,
    batches: Iterable<RowBatch> | AsyncIterable<RowBatch>,
    options: {
      afterDelivery?: () => Promise<void>;
      /** The caller has checked values with invalidRows already. */
      validated?: boolean;
      /** The rows were read from the stream's Kafka topic: they go to its readers, not back to the topic. */
      fromTopic?: boolean;
    } = {},
  ): Promise<number> {
    let rows = 0;
    try {
      await inTransaction(conn, async () => {
        // Views the engine aggregates keep the statement's partial states in memory and are written once.
        const pending: FoldedViews = new Map();
        for await (const batch of batches) {
          if (!options.validated) await validateInStore(conn, stream, batch);
          if (options.fromTopic || !streamSinkTarget(stream)) await this.deliverToReaders(conn, stream, batch, pending);
          else await this.deliver(conn, stream, batch);
          rows += batch.length;
          if (pendingGroups(pending) > maxFoldedGroups) await this.flushFolded(conn, pending);
        }
        await this.flushFolded(conn, pending);
        await options.afterDelivery?.();
      });
    } catch (err) {
      this.stats.streamFailed(stream, err);
      throw err;
    }
    return rows;
  }

  /** Writes the partial states folded so far, one upsert per view, and sends their changes down the output streams. */
  private async flushFolded(conn: StoreConnection, pending: FoldedViews): Promise<void> {
    for (const [view, groups] of pending) {
      pending.delete(view);
      await this.flushView(conn, view, groups);
    }
  }

  private flushView(conn: StoreConnection, view: ContinuousView, groups: PendingGroups): Promise<void> {
    return this.writeView(conn, view, (withChanges) => view.flush(conn, groups, withChanges));
  }

  /** Runs a write to a view (asking for its changes when its output stream has readers) and sends them down. */
  private async writeView(conn: StoreConnection, view: ContinuousView, write: (withChanges: boolean) => Promise<Change[]>): Promise<void> {
    const started = performance.now();
    let changes: Change[];
    try {
      changes = await write(this.wantsChanges(view));
    } catch (err) {
      this.stats.viewFailed(view.plan, 'view', err);
      throw err;
    }
    this.stats.viewExecuted(view.plan, 'view', performance.now() - started);
    await this.emitChanges(conn, view, changes);
  }

  /**
   * The Kafka topics rows read from a stream can end up in (through
   * transforms and output streams, down the chain): the targets a source
   * must not outrun.
   */
  sinkTargetsFedBy(stream: Stream, seen = new Set<Stream>()): KafkaSinkTarget[] {
    if (seen.has(stream)) return [];
    seen.add(stream);
    const targets: KafkaSinkTarget[] = [];
    const follow = (next: Stream | undefined) => {
      if (!next) return;
      const target = streamSinkTarget(next);
      if (target) targets.push(target);
      else targets.push(...this.sinkTargetsFedBy(next, seen));
    };
    for (const reader of this.readersOf(stream)) {
      if (reader instanceof ContinuousTransform) {
        targets.push(...(reader.plan.transform.kafka ?? []));
        for (const into of reader.plan.transform.insertInto) follow(this.stream(into.schema, into.name));
      }
      follow(this.stream(reader.plan.schema, outputStreamName(reader.plan.name)));
    }
    return targets;
  }

  /**
   * Whether anything follows a view's changes (the readers of its output
   * stream, subscribers, listeners), so they are worth computing. Only views
   * with an output stream can say what changed.
   */
  wantsChanges(view: ContinuousView): boolean {
    const output = this.stream(view.plan.schema, outputStreamName(view.plan.name));
    return output !== undefined && (this.readersOf(output).length > 0 || this.changes.wants(view));
  }

  /** Sends changes of a view down its output stream and to its subscribers (TTL expiry too: new is NULL). */
  async emitChanges(conn: StoreConnection, view: ContinuousView, changes: Change[]): Promise<void> {
    if (changes.length === 0) return;
    const output = this.stream(view.plan.schema, outputStreamName(view.plan.name));
    if (!output) return;
    await this.changes.stage(conn, view, changes);
    if (this.readersOf(output).length > 0) await this.deliver(conn, output, changeBatch(output, changes));
  }

  /**
   * Rows written to a stream: a stream declared on SERVER kafka is its topic
   * (its readers get the rows when they come back from Kafka); any other
   * stream's rows go to its readers.
   */
  private async deliver(conn: StoreConnection, stream: Stream, batch: RowBatch): Promise<void> {
    const target = streamSinkTarget(stream);
    if (target) await this.writeToTopic(conn, stream, target, batch);
    else await this.deliverToReaders(conn, stream, batch);
  }

  private readonly topicWrites = new WeakMap<Stream, string>();

  private async writeToTopic(conn: StoreConnection, stream: Stream, target: KafkaSinkTarget, batch: RowBatch): Promise<void> {
    if (batch.length === 0) return;
    this.stats.streamInput(stream, batch.length);
    const plan = { stream: { schema: stream.schema, name: stream.name, alias: stream.name }, columns: stream.columns.map((c) => c.name) } as ViewPlan;
    let sql = this.topicWrites.get(stream);
    if (!sql) {
      sql = messagesSql(target, messageColumns(plan.columns), batchSource(plan, stream).from);
      this.topicWrites.set(stream, sql);
    }
    await this.sinksOrFail().write(conn, target, sql, batchParams(plan, stream, batch));
  }

  private sinksOrFail(): KafkaSinks {
    if (!this.sinks) throw new SqlError(SqlState.featureNotSupported, 'Kafka support is not enabled in this server', { hint: 'Writing to a Kafka topic needs the server started with Kafka support.' });
    return this.sinks;
  }

  /**
   * Applies a batch to the views reading a stream, then the changes of those
   * views to the views reading their output streams, and so on down the chain.
   */
  private async deliverToReaders(conn: StoreConnection, stream: Stream, batch: RowBatch, pending?: FoldedViews): Promise<void> {
    if (batch.length > 0) this.stats.streamInput(stream, batch.length);
    for (const reader of this.readersOf(stream)) {
      if (reader instanceof ContinuousTransform) {
        const output = this.stream(reader.plan.schema, outputStreamName(reader.plan.name));
        const wanted = output !== undefined && this.readersOf(output).length > 0;
        await this.timedTransform(reader, batch, () => this.applyTransform(conn, reader, batch, wanted ? output : undefined));
        continue;
      }
      if (reader.active) this.stats.viewInput(reader.plan, 'view', batch.length);
      if (pending && reader.foldsInMemory) {
        const groups = pending.get(reader) ?? new Map();
        if (this.foldCounted(reader, batch, groups)) {
          pending.set(reader, groups);
          continue;
        }
        // Arrival order matters to string_agg and array_agg: what was folded goes first.
        pending.delete(reader);
        await this.flushView(conn, reader, groups);
      }
      await this.writeView(conn, reader, (withChanges) => reader.apply(conn, batch, withChanges));
    }
  }

  /** ContinuousView.fold, with an error (a failing expression the engine evaluates) counted against the view. */
  private foldCounted(view: ContinuousView, batch: RowBatch, groups: PendingGroups): boolean {
    try {
      return view.fold(batch, groups);
    } catch (err) {
      this.stats.viewFailed(view.plan, 'view', err);
      throw err;
    }
  }

  private async timedTransform(transform: ContinuousTransform, batch: RowBatch, work: () => Promise<void>): Promise<void> {
    if (!transform.active || batch.length === 0) return work();
    this.stats.viewInput(transform.plan, 'transform', batch.length);
    const started = performance.now();
    try {
      await work();
    } catch (err) {
      this.stats.viewFailed(transform.plan, 'transform', err);
      throw err;
    }
    this.stats.viewExecuted(transform.plan, 'transform', performance.now() - started);
  }

  /**
   * A transform's rows for a batch go to its Kafka topics, to the streams it
   * inserts into (a Kafka stream's messages are rendered by the store
   * straight from the rows) and to the readers of its output stream.
   */
  private async applyTransform(conn: StoreConnection, transform: ContinuousTransform, batch: RowBatch, output: Stream | undefined): Promise<void> {
    if (!transform.active || batch.length === 0) return;
    const computed = transform.rendersTimestamptz && !(await sessionInUtc(conn)) ? undefined : transform.evaluate(batch);
    if (computed && (await this.applyEngineRows(conn, transform, computed, output))) return;
    const params = transform.params(batch);
    await transform.callTrigger(conn, params);
    for (const target of transform.plan.transform.kafka ?? []) await this.sinksOrFail().write(conn, target, transform.messagesSql(target), params);
    const into = transform.plan.transform.insertInto.map((target) => {
      const stream = this.stream(target.schema, target.name);
      if (!stream) throw new SqlError(SqlState.undefinedTable, `stream "${target.name}" of transform ${transform.name} does not exist`);
      return stream;
    });
    for (const stream of into) {
      const target = streamSinkTarget(stream);
      if (target) await this.sinksOrFail().write(conn, target, transform.messagesSqlInto(stream, target), params);
    }
    const rowTargets = into.filter((s) => !s.kafkaOptions);
    if (rowTargets.length === 0 && !output) return;
    await this.deliverRows(conn, rowTargets, output, transform.outputNames, await transform.rows(conn, params));
  }

  /** A transform's rows (text) to the streams it inserts into and to the readers of its output stream. */
  private async deliverRows(conn: StoreConnection, targets: Stream[], output: Stream | undefined, names: string[], rows: (string | null)[][]): Promise<void> {
    if (rows.length === 0) return;
    for (const stream of targets) {
      const derived = rowsToBatch(stream, names, rows);
      await validateInStore(conn, stream, derived);
      await this.deliver(conn, stream, derived);
    }
    if (output) await this.deliver(conn, output, rowsToBatch(output, names, rows));
  }

  /**
   * A transform's rows computed by the engine, sent on without the store
   * evaluating them: Kafka messages rendered in JS, rows for other streams as
   * text. False (nothing written) when some target needs the store's SQL.
   */
  private async applyEngineRows(conn: StoreConnection, transform: ContinuousTransform, computed: EngineRows, output: Stream | undefined): Promise<boolean> {
    const into = transform.plan.transform.insertInto.map((target) => this.stream(target.schema, target.name));
    if (into.some((s) => !s)) return false;
    const writes: { target: KafkaSinkTarget; messages: { keys: (string | null)[]; values: string[] } }[] = [];
    try {
      for (const target of transform.plan.transform.kafka ?? []) {
        const messages = engineMessages(computed, target);
        if (!messages) return false;
        writes.push({ target, messages });
      }
      for (const stream of into as Stream[]) {
        const target = streamSinkTarget(stream);
        if (!target) continue;
        const messages = engineMessages(computed, target, stream);
        if (!messages) return false;
        writes.push({ target, messages });
      }
    } catch (err) {
      if (err instanceof NeedsStore) return false;
      throw err;
    }
    for (const { target, messages } of writes) {
      if (messages.values.length) await this.sinksOrFail().write(conn, target, givenMessagesSql, [arrayLiteral(messages.keys), arrayLiteral(messages.values)]);
    }
    const rowTargets = (into as Stream[]).filter((s) => !s.kafkaOptions);
    if (rowTargets.length === 0 && !output) return true;
    const rows = computed.rows.map((row) => row.map((v, i) => (v === null ? null : outputText(computed.types[i], v))));
    await this.deliverRows(conn, rowTargets, output, computed.names, rows);
    return true;
  }

  /**
   * Rows holding a value the store's input function rejects (for the types
   * the engine does not parse itself), with PostgreSQL's message: lets a
   * source set those rows aside instead of failing the whole batch.
   */
  async invalidRows(conn: StoreConnection, stream: Stream, batch: RowBatch): Promise<Map<number, InvalidValue>> {
    const invalid = new Map<number, InvalidValue>();
    for (const [i, column] of stream.columns.entries()) {
      if (stream.inputs[i] !== undefined || column.name === 'arrival_timestamp') continue;
      // Only values the engine cannot vouch for are sent to the store's input function.
      const values = (batch.columns[i] as (string | null)[]).map((v) => (v === null || certainlyValidDateTime(column.typeName, v) ? null : v));
      if (values.every((v) => v === null)) continue;
      const result = await conn.query(
        `SELECT u.i - 1, e.message FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i), pg_input_error_info(u.v, $2) AS e
         WHERE u.v IS NOT NULL AND e.message IS NOT NULL`,
        [arrayLiteral(values), column.type],
      );
      for (const [row, message] of result.rows) {
        const r = Number(row);
        if (!invalid.has(r)) invalid.set(r, { column: column.name, value: values[r] as string, message: message as string });
      }
    }
    return invalid;
  }
}

/** A value a column's input function refused: which column, the text, and PostgreSQL's message. */
export interface InvalidValue {
  column: string;
  value: string;
  message: string;
}

/** An invalid value as a dead letter's error: `column "c": message`. */
export function describeInvalidValue(invalid: InvalidValue): string {
  return `column "${invalid.column}": ${invalid.message}`;
}

/**
 * Rows a transform selected, as a batch of another stream: columns match by
 * name when every selected column names one of the stream's, otherwise by
 * position (PipelineDB's insert_into_stream); a column the rows lack is NULL,
 * arrival_timestamp is now unless given. Values go through the target
 * columns' input functions.
 */
function rowsToBatch(stream: Stream, names: string[], rows: (string | null)[][]): RowBatch {
  const arrival = new Date().toISOString();
  const sources = stream.sourcesOf(names);
  const columns = stream.columns.map((column, c) => {
    const from = sources[c];
    const input = stream.inputs[c];
    return rows.map((row) => {
      const text = from >= 0 ? row[from] : null;
      if (text === null) return column.name === 'arrival_timestamp' ? arrival : null;
      return input ? input(text) : text;
    });
  });
  return { length: rows.length, columns };
}

/** A view's changes as a batch of its output stream (columns old, new, delta if it has one, arrival_timestamp). */
function changeBatch(output: Stream, changes: Change[]): RowBatch {
  const arrival = new Date().toISOString();
  const columns = output.columns.map((c) => {
    if (c.name === 'old') return changes.map((ch) => ch.before);
    if (c.name === 'new') return changes.map((ch) => ch.after);
    if (c.name === 'delta') return changes.map((ch) => ch.delta ?? null);
    if (c.name === 'arrival_timestamp') return changes.map(() => arrival);
    return changes.map(() => null);
  });
  return { length: changes.length, columns };
}

/** Partial states folded in memory per view, during one ingest. */
type FoldedViews = Map<ContinuousView, PendingGroups>;

/** Above this many folded groups (all views together) an ingest writes what it has, to bound memory. */
const maxFoldedGroups = 200_000;

function pendingGroups(pending: FoldedViews): number {
  let groups = 0;
  for (const folded of pending.values()) groups += folded.size;
  return groups;
}

/**
 * Values of types the engine does not parse itself are checked by the store's
 * own input functions, so a bad value fails the write exactly as PostgreSQL would.
 */
async function validateInStore(conn: StoreConnection, stream: Stream, batch: RowBatch): Promise<void> {
  const casts: string[] = [];
  const params: string[] = [];
  stream.columns.forEach((column, i) => {
    if (stream.inputs[i] !== undefined || column.name === 'arrival_timestamp') return;
    const values = (batch.columns[i] as (string | null)[]).map((v) => (v === null || certainlyValidDateTime(column.typeName, v) ? null : v));
    if (values.every((v) => v === null)) return;
    params.push(arrayLiteral(values));
    // An array of arrays would be read as one multi-dimensional array of the element type: cast each value instead.
    casts.push(column.typeName.startsWith('_') ? `(SELECT count(u.v::${column.type}) FROM unnest($${params.length}::text[]) AS u(v))` : `$${params.length}::${column.type}[] IS NULL`);
  });
  if (casts.length) await conn.query(`SELECT ${casts.join(', ')}`, params);
}

const utcZones = new Set(['UTC', 'Etc/UTC', 'UCT', 'Etc/UCT', 'GMT', 'Etc/GMT', 'GMT0', 'Etc/GMT0', 'GMT+0', 'GMT-0', 'Etc/GMT+0', 'Etc/GMT-0', 'Greenwich', 'Etc/Greenwich', 'Universal', 'Etc/Universal', 'Zulu', 'Etc/Zulu']);
const sessionZones = new WeakMap<StoreConnection, boolean>();

/**
 * Whether a store session prints timestamptz in UTC (what the engine's rendering assumes): from the
 * TimeZone PostgreSQL reports to the session, which follows every SET; else asked once per session.
 */
async function sessionInUtc(conn: StoreConnection): Promise<boolean> {
  const reported = conn.reportedSetting?.('TimeZone');
  if (reported !== undefined) return utcZones.has(reported);
  let utc = sessionZones.get(conn);
  if (utc === undefined) {
    utc = utcZones.has((await conn.query("SELECT current_setting('TimeZone')")).rows[0][0] as string);
    sessionZones.set(conn, utc);
  }
  return utc;
}
