/**
 * What flows through the pipeline, counted as it happens (cheaply: a few
 * additions per batch), for pipelinedb.stream_stats, query_stats and
 * proc_stats. Counts start at zero when Sluice starts, as PipelineDB's did.
 */

/** Batch times kept per view for the p99: the most recent ones. */
const latencySamples = 1024;

export interface StreamStats {
  schema: string;
  name: string;
  inputRows: number;
  inputBatches: number;
  errors: number;
  lastError: string | null;
  lastErrorAt: Date | null;
  lastInputAt: Date | null;
}

export interface ViewStats {
  schema: string;
  name: string;
  kind: 'view' | 'transform';
  inputRows: number;
  executions: number;
  execMs: number;
  errors: number;
  lastError: string | null;
  lastErrorAt: Date | null;
  lastExecAt: Date | null;
  /** The latest batch times (ms), a ring of latencySamples. */
  readonly recentMs: Float64Array;
  recentCount: number;
}

interface Named {
  schema: string;
  name: string;
}

export class PipelineStats {
  readonly startedAt = new Date();
  private readonly streams = new Map<string, StreamStats>();
  private readonly views = new Map<string, ViewStats>();
  private dirty = false;

  streamInput(stream: Named, rows: number): void {
    const s = this.streamOf(stream);
    s.inputRows += rows;
    s.inputBatches++;
    s.lastInputAt = new Date();
    this.dirty = true;
  }

  streamFailed(stream: Named, err: unknown): void {
    const s = this.streamOf(stream);
    s.errors++;
    s.lastError = describe(err);
    s.lastErrorAt = new Date();
    this.dirty = true;
  }

  /** A view or transform took `rows` stream rows (folded ones count when folded). */
  viewInput(view: Named, kind: ViewStats['kind'], rows: number): void {
    this.viewOf(view, kind).inputRows += rows;
    this.dirty = true;
  }

  /** One write of a view or transform to the store, and how long its work took. */
  viewExecuted(view: Named, kind: ViewStats['kind'], ms: number): void {
    const v = this.viewOf(view, kind);
    v.executions++;
    v.execMs += ms;
    v.recentMs[v.recentCount++ % latencySamples] = ms;
    v.lastExecAt = new Date();
    this.dirty = true;
  }

  viewFailed(view: Named, kind: ViewStats['kind'], err: unknown): void {
    const v = this.viewOf(view, kind);
    v.errors++;
    v.lastError = describe(err);
    v.lastErrorAt = new Date();
    this.dirty = true;
  }

  /** Everything counted, when something changed since the last call. */
  takeChanged(): { streams: StreamStats[]; views: ViewStats[] } | undefined {
    if (!this.dirty) return undefined;
    this.dirty = false;
    return { streams: [...this.streams.values()], views: [...this.views.values()] };
  }

  /** Everything counted, now. */
  snapshot(): { streams: StreamStats[]; views: ViewStats[] } {
    return { streams: [...this.streams.values()], views: [...this.views.values()] };
  }

  /** What takeChanged gave could not be written: give it again next time. */
  unwritten(): void {
    this.dirty = true;
  }

  /** Forgets a dropped stream or view. */
  forget(schema: string, name: string): void {
    this.streams.delete(`${schema}.${name}`);
    this.views.delete(`${schema}.${name}`);
    this.dirty = true;
  }

  private streamOf(stream: Named): StreamStats {
    const key = `${stream.schema}.${stream.name}`;
    let s = this.streams.get(key);
    if (!s) {
      s = { schema: stream.schema, name: stream.name, inputRows: 0, inputBatches: 0, errors: 0, lastError: null, lastErrorAt: null, lastInputAt: null };
      this.streams.set(key, s);
    }
    return s;
  }

  private viewOf(view: Named, kind: ViewStats['kind']): ViewStats {
    const key = `${view.schema}.${view.name}`;
    let v = this.views.get(key);
    if (!v) {
      v = { schema: view.schema, name: view.name, kind, inputRows: 0, executions: 0, execMs: 0, errors: 0, lastError: null, lastErrorAt: null, lastExecAt: null, recentMs: new Float64Array(latencySamples), recentCount: 0 };
      this.views.set(key, v);
    }
    return v;
  }
}

/** The 99th percentile of a view's recent batch times (nearest rank), or null before any. */
export function p99(view: ViewStats): number | null {
  const n = Math.min(view.recentCount, latencySamples);
  if (n === 0) return null;
  const sorted = Float64Array.from(view.recentMs.subarray(0, n)).sort();
  return sorted[Math.min(n - 1, Math.ceil(0.99 * n) - 1)];
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? `${code}: ${message}` : message;
}
