/**
 * Time and chaining benchmarks. JSON lines on stdout.
 *
 *   npm run bench:windows
 *
 * sliding-window: COPY rows/s into a stream feeding a 1-hour sliding window over
 *                 10,000 keys, and the latency of reading the whole view.
 * join:           COPY rows/s through a view joining the stream with a 100,000-row table.
 */
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import { startSluice } from '../test/support/sluice.ts';

const rows = Number(process.env.BENCH_ROWS ?? 500_000);
const report = (r: Record<string, unknown>) => console.log(JSON.stringify(r));

function chunks(make: (i: number) => string): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start < rows; start += 10_000) {
    let text = '';
    for (let i = start; i < Math.min(rows, start + 10_000); i++) text += make(i);
    out.push(Buffer.from(text));
  }
  return out;
}

const sluice = await startSluice();
const client = await sluice.client();
await client.query('CREATE STREAM events (key int, amount numeric, ts timestamptz)');
await client.query("CREATE VIEW last_hour WITH (sw = '1 hour', sw_column = 'ts') AS SELECT key, count(*), sum(amount) FROM events GROUP BY key");
const now = Date.now();
// Times spread over the last hour, so rows land in all 20 buckets of 3 minutes.
const data = chunks((i) => `${i % 10_000}\t${i % 100}\t${new Date(now - (i % 3600) * 1000).toISOString()}\n`);
let t0 = performance.now();
await pipeline(Readable.from(data), client.query(copyFrom('COPY events (key, amount, ts) FROM STDIN')));
let seconds = (performance.now() - t0) / 1000;
report({ bench: 'sliding-window', rows, keys: 10_000, window: '1 hour', buckets: 20, seconds: +seconds.toFixed(2), rows_per_s: Math.round(rows / seconds) });
const reads: number[] = [];
for (let i = 0; i < 20; i++) {
  t0 = performance.now();
  const result = await client.query('SELECT * FROM last_hour');
  reads.push(performance.now() - t0);
  if (result.rows.length !== 10_000) throw new Error(`expected 10000 groups, got ${result.rows.length}`);
}
reads.sort((a, b) => a - b);
report({ bench: 'sliding-window-read', groups: 10_000, mrel_rows: Number((await client.query('SELECT count(*) FROM last_hour_mrel')).rows[0].count), p50_ms: +reads[10].toFixed(1), max_ms: +reads[19].toFixed(1) });

await client.query('CREATE TABLE users (id int PRIMARY KEY, country text)');
await client.query("INSERT INTO users SELECT g, 'c' || (g % 50) FROM generate_series(1, 100000) g");
await client.query('CREATE STREAM clicks (user_id int, ms int)');
await client.query('CREATE VIEW by_country AS SELECT u.country, count(*), sum(c.ms) FROM clicks c JOIN users u ON u.id = c.user_id GROUP BY u.country');
const clicks = chunks((i) => `${1 + ((i * 7919) % 100_000)}\t${i % 500}\n`);
t0 = performance.now();
await pipeline(Readable.from(clicks), client.query(copyFrom('COPY clicks (user_id, ms) FROM STDIN')));
seconds = (performance.now() - t0) / 1000;
const joined = Number((await client.query('SELECT sum(count) AS n FROM by_country')).rows[0].n);
if (joined !== rows) throw new Error(`join counted ${joined} of ${rows}`);
report({ bench: 'stream-table-join', rows, table_rows: 100_000, seconds: +seconds.toFixed(2), rows_per_s: Math.round(rows / seconds) });
await sluice.stop({ removeData: true });
