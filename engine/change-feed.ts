import type { Change, ContinuousView } from './continuous-view.ts';
import { SqlError, SqlState } from './errors.ts';
import { quoteLiteral } from './sql-text.ts';
import { whenTransactionEnds, type StoreConnection } from './store.ts';

/**
 * One row of a subscription: when it changed (ms since the epoch), how many
 * copies of the row came (+) or went (-), and the view's row as PostgreSQL record text.
 */
export interface SubscriptionRow {
  timestamp: number;
  diff: number;
  row: string;
}

/** A committed transaction's changes to one view, consolidated: each row once, with its net diff. */
interface PublishedChanges {
  xid: bigint;
  timestamp: number;
  rows: readonly { row: string; diff: number }[];
}

/**
 * A transaction's changes as rows and net diffs: a group changed by two
 * statements of one transaction shows only its row before and its row after.
 */
function consolidate(changes: readonly Change[]): { row: string; diff: number }[] {
  const net = new Map<string, number>();
  for (const { before, after } of changes) {
    if (before !== null) net.set(before, (net.get(before) ?? 0) - 1);
    if (after !== null) net.set(after, (net.get(after) ?? 0) + 1);
  }
  const rows: { row: string; diff: number }[] = [];
  for (const [row, diff] of net) if (diff !== 0) rows.push({ row, diff });
  // Retractions first, as a reader applying them in order expects.
  return rows.sort((a, b) => Math.sign(a.diff) - Math.sign(b.diff));
}

/** PostgreSQL's `pg_snapshot`: which transactions a reader saw as committed. */
export interface Snapshot {
  xmin: bigint;
  xmax: bigint;
  inProgress: ReadonlySet<bigint>;
}

/** Parses `pg_current_snapshot()::text` (`xmin:xmax:xip,xip…`). */
export function parseSnapshot(text: string): Snapshot {
  const [xmin, xmax, xip] = text.split(':');
  return { xmin: BigInt(xmin), xmax: BigInt(xmax), inProgress: new Set(xip ? xip.split(',').map((x) => BigInt(x)) : []) };
}

/** Whether the committed transaction `xid` is visible in `snapshot` (pg_visible_in_snapshot). */
export function visibleIn(snapshot: Snapshot, xid: bigint): boolean {
  if (xid < snapshot.xmin) return true;
  if (xid >= snapshot.xmax) return false;
  return !snapshot.inProgress.has(xid);
}

/**
 * A client's subscription to a view's changes (SUBSCRIBE). Committed changes
 * are queued until the client takes them; a client too far behind is told
 * (`overflowed`) and dropped, so it never holds up ingest. Until its starting
 * snapshot is known, changes are held back: those the snapshot already saw
 * are dropped, the rest follow the snapshot.
 */
export class Subscription {
  private queue: SubscriptionRow[] = [];
  private head = 0;
  private held: PublishedChanges[] | undefined = [];
  private snapshot: Snapshot | undefined;
  private wake: (() => void) | undefined;
  /** Why the subscription ended (it fell behind, its view was dropped), once it has. */
  ended: SqlError | undefined;
  /** Called when rows arrive or the subscription ends (a streaming client writes them out). */
  onChange: (() => void) | undefined;

  constructor(
    readonly view: ContinuousView,
    /** The timestamp of the rows of its snapshot: every change after it has a later one. */
    readonly asOf: number,
    private readonly maxBacklog: number,
    private readonly feed: ChangeFeed,
  ) {}

  /** Rows waiting to be taken. */
  get backlog(): number {
    return this.queue.length - this.head;
  }

  /**
   * The view's rows when the subscription began (with snapshot = true) and
   * the snapshot they were read in; changes held back meanwhile follow, less
   * those the snapshot already saw. Without a snapshot, every change held back follows.
   */
  begin(snapshot?: { rows: readonly string[]; snapshot: string }): void {
    if (snapshot) {
      this.snapshot = parseSnapshot(snapshot.snapshot);
      for (const row of snapshot.rows) this.queue.push({ timestamp: this.asOf, diff: 1, row });
    }
    const held = this.held ?? [];
    this.held = undefined;
    for (const published of held) this.publish(published);
    this.signal();
  }

  /** @internal (ChangeFeed) */
  publish(published: PublishedChanges): void {
    if (this.ended) return;
    if (this.held) {
      this.held.push(published);
      return;
    }
    if (this.snapshot && visibleIn(this.snapshot, published.xid)) return;
    for (const { row, diff } of published.rows) this.queue.push({ timestamp: published.timestamp, diff, row });
    if (this.backlog > this.maxBacklog) {
      this.end(
        new SqlError(SqlState.configurationLimitExceeded, `subscription to ${this.view.plan.schema}.${this.view.name} fell more than ${this.maxBacklog} rows behind the view's changes`, {
          hint: 'Read the subscription faster (FETCH more rows at a time), or subscribe again WITH (snapshot = true) to start from the current rows.',
        }),
      );
      return;
    }
    this.signal();
  }

  /** Takes up to `max` waiting rows, oldest first. */
  take(max = Infinity): SubscriptionRow[] {
    const end = Math.min(this.queue.length, this.head + max);
    const rows = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return rows;
  }

  /** Resolves when rows are waiting or the subscription ended, after `timeoutMs`, or when `signal` aborts. */
  async waitForRows(timeoutMs = Infinity, signal?: AbortSignal): Promise<void> {
    if (this.backlog > 0 || this.ended || timeoutMs <= 0 || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = Number.isFinite(timeoutMs) ? setTimeout(done, timeoutMs) : undefined;
      signal?.addEventListener('abort', done);
      this.wake = done;
    });
  }

  /** Ends the subscription (with the reason a client is told, if any) and stops its changes. */
  end(reason?: SqlError): void {
    if (this.ended) return;
    this.ended = reason ?? new SqlError(SqlState.queryCanceled, 'subscription closed');
    this.queue = [];
    this.head = 0;
    this.feed.unsubscribe(this);
    this.signal();
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    this.onChange?.();
  }
}

/**
 * Committed changes of continuous views, for the clients that follow them:
 * SUBSCRIBE subscriptions get every change in commit order; `LISTEN
 * sluice_<view>_changes` clients get a notification when a transaction
 * changed the view. A write stages its changes on its store session; they
 * are published when (and only if) its transaction commits.
 */
export class ChangeFeed {
  private readonly subscriptions = new Map<ContinuousView, Set<Subscription>>();
  /** Per channel, how many client sessions listen on it. */
  private readonly listeners = new Map<string, number>();
  private readonly staged = new WeakMap<StoreConnection, { xid: string; changes: Map<ContinuousView, Change[]> }>();
  /** Per session, the savepoints of its open transaction: how many changes per view were staged when each was set. */
  private readonly savepoints = new WeakMap<StoreConnection, { name: string; staged: Map<ContinuousView, number> }[]>();
  private lastTimestamp = 0;

  /** Whether a write to the view should compute its changes for this feed. */
  wants(view: ContinuousView): boolean {
    return this.subscriptions.has(view) || this.listeners.has(changesChannel(view.name));
  }

  subscribe(view: ContinuousView, maxBacklog: number): Subscription {
    // Its snapshot's timestamp: after every change published so far, before any to come.
    const asOf = (this.lastTimestamp = Math.max(Date.now(), this.lastTimestamp + 1));
    const subscription = new Subscription(view, asOf, maxBacklog, this);
    let set = this.subscriptions.get(view);
    if (!set) this.subscriptions.set(view, (set = new Set()));
    set.add(subscription);
    return subscription;
  }

  /** @internal (Subscription.end) */
  unsubscribe(subscription: Subscription): void {
    const set = this.subscriptions.get(subscription.view);
    set?.delete(subscription);
    if (set?.size === 0) this.subscriptions.delete(subscription.view);
  }

  /** Ends the subscriptions of a view that is gone or replaced. */
  viewRemoved(view: ContinuousView): void {
    for (const subscription of [...(this.subscriptions.get(view) ?? [])]) {
      subscription.end(new SqlError(SqlState.undefinedTable, `continuous view ${view.plan.schema}.${view.name} was dropped or replaced`));
    }
  }

  /** A client session started (`delta` 1) or stopped (-1) listening on a channel. */
  listen(channel: string, delta: 1 | -1): void {
    const count = (this.listeners.get(channel) ?? 0) + delta;
    if (count > 0) this.listeners.set(channel, count);
    else this.listeners.delete(channel);
  }

  /**
   * Stages a write's changes on the session that made them, to be published
   * when its transaction commits; listeners are notified by the transaction
   * itself (PostgreSQL delivers a NOTIFY only on commit).
   */
  async stage(conn: StoreConnection, view: ContinuousView, changes: readonly Change[]): Promise<void> {
    if (changes.length === 0) return;
    const channel = changesChannel(view.name);
    if (this.listeners.has(channel)) {
      const payload = JSON.stringify({ view: `${view.plan.schema}.${view.name}`, changes: changes.length });
      await conn.query(`SELECT pg_notify(${quoteLiteral(channel)}, $1)`, [payload]);
    }
    if (!this.subscriptions.has(view)) return;
    let staged = this.staged.get(conn);
    if (!staged) {
      const xid = (await conn.query('SELECT pg_current_xact_id()::text')).rows[0][0] as string;
      const entry = { xid, changes: new Map<ContinuousView, Change[]>() };
      staged = entry;
      this.staged.set(conn, entry);
      whenTransactionEnds(conn, {
        xid,
        ended: (committed) => {
          this.staged.delete(conn);
          if (committed) this.publish(BigInt(xid), entry.changes);
        },
      });
    }
    const list = staged.changes.get(view);
    if (list) for (const change of changes) list.push(change);
    else staged.changes.set(view, [...changes]);
  }

  /**
   * The client's transaction control, so changes undone by ROLLBACK TO SAVEPOINT
   * are never published: `set` marks how much is staged, `rollback` drops what
   * was staged since, `release` forgets the mark, `end` forgets them all.
   */
  savepoint(conn: StoreConnection, action: 'set' | 'rollback' | 'release' | 'end', name = ''): void {
    if (action === 'end') {
      this.savepoints.delete(conn);
      return;
    }
    let marks = this.savepoints.get(conn);
    if (action === 'set') {
      const staged = this.staged.get(conn)?.changes;
      if (!marks) this.savepoints.set(conn, (marks = []));
      marks.push({ name, staged: new Map([...(staged ?? [])].map(([view, list]) => [view, list.length])) });
      return;
    }
    const at = marks ? marks.map((m) => m.name).lastIndexOf(name) : -1;
    if (!marks || at < 0) return;
    if (action === 'release') {
      marks.length = at;
      return;
    }
    marks.length = at + 1;
    for (const [view, list] of this.staged.get(conn)?.changes ?? []) list.length = marks[at].staged.get(view) ?? 0;
  }

  private publish(xid: bigint, changes: Map<ContinuousView, Change[]>): void {
    const timestamp = (this.lastTimestamp = Math.max(Date.now(), this.lastTimestamp + 1));
    for (const [view, list] of changes) {
      const subscriptions = this.subscriptions.get(view);
      if (!subscriptions) continue;
      const rows = consolidate(list);
      if (rows.length === 0) continue;
      for (const subscription of subscriptions) subscription.publish({ xid, timestamp, rows });
    }
  }
}

/** The channel `LISTEN` clients hear a view's changes on. */
export function changesChannel(view: string): string {
  return `sluice_${view}_changes`;
}
