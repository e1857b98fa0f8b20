import type pg from 'pg';

/** A subscription row as node-postgres returns it (text values). */
export type SubscriptionRow = Record<string, string | null> & { mz_timestamp: string; mz_diff: string };

/**
 * What a subscriber knows after applying every row it received: the view's
 * rows with their multiplicities (each must end at 1), keyed by the JSON of
 * the view's columns.
 */
export function foldSubscription(rows: readonly SubscriptionRow[]): Map<string, number> {
  const state = new Map<string, number>();
  for (const row of rows) {
    const { mz_timestamp: _ts, mz_diff: diff, ...columns } = row;
    const key = JSON.stringify(columns);
    const count = (state.get(key) ?? 0) + Number(diff);
    if (count === 0) state.delete(key);
    else state.set(key, count);
  }
  return state;
}

/** The view's rows read with SELECT, in the same form (text values, as the subscription sends them). */
export async function viewState(client: pg.Client, view: string): Promise<Map<string, number>> {
  const result = await client.query({ text: `SELECT * FROM ${view}`, types: { getTypeParser: () => (v: string) => v } });
  const state = new Map<string, number>();
  for (const row of result.rows) {
    const key = JSON.stringify(row);
    state.set(key, (state.get(key) ?? 0) + 1);
  }
  return state;
}

/** Fetches from a subscription cursor until `done` holds for everything fetched so far. */
export async function fetchUntil(client: pg.Client, cursor: string, done: (rows: SubscriptionRow[]) => boolean, timeoutMs = 30_000): Promise<SubscriptionRow[]> {
  const rows: SubscriptionRow[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(rows)) {
    if (Date.now() > deadline) throw new Error(`subscription ${cursor}: condition not met after ${timeoutMs} ms (${rows.length} rows fetched)`);
    const result = await client.query({ text: `FETCH ALL ${cursor} WITH (timeout = '200ms')`, types: { getTypeParser: () => (v: string) => v } });
    rows.push(...(result.rows as SubscriptionRow[]));
  }
  return rows;
}
