/**
 * Sluice benchmarks. Each result is one JSON line on stdout.
 *
 *   npm run bench                 # everything
 *   npm run bench -- copy insert  # some of: copy, insert, read
 *
 * copy:   rows/s of COPY … FROM STDIN into a stream feeding 1 and 10 views
 *         (GROUP BY over 1,000 keys with count/sum/avg)
 * insert: rows/s of multi-row INSERT (1,000 rows per statement), same views
 * read:   latency of a point query on a view through Sluice, against the same
 *         PGlite served by a bare protocol pump (and in-process, for reference)
 */
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { PgliteStore } from '../connectors/postgres/index.ts';
import { FrontendParser, authenticationOk, parameterStatus, readyForQuery } from '../sql/wire/codec.ts';
import { report, startMemorySluice } from './support.ts';

const which = new Set(process.argv.slice(2));
const wants = (name: string) => which.size === 0 || which.has(name);

const startSluice = startMemorySluice;

async function createViews(client: pg.Client, count: number): Promise<void> {
  await client.query('CREATE STREAM events (key text, n int4, x float8)');
  for (let i = 0; i < count; i++) {
    await client.query(`CREATE VIEW v${i} AS SELECT key, count(*), sum(n), avg(x) FROM events GROUP BY key`);
  }
}

function copyChunks(rows: number, keys: number): Buffer[] {
  const chunks: Buffer[] = [];
  const perChunk = 10_000;
  for (let start = 0; start < rows; start += perChunk) {
    let text = '';
    for (let i = start; i < Math.min(rows, start + perChunk); i++) text += `key_${i % keys}\t${i % 1000}\t${(i % 977) / 8}\n`;
    chunks.push(Buffer.from(text));
  }
  return chunks;
}

async function benchCopy(views: number, rows: number): Promise<void> {
  const sluice = await startSluice();
  await createViews(sluice.client, views);
  const chunks = copyChunks(rows, 1000);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await pipeline(Readable.from(chunks), sluice.client.query(copyFrom('COPY events (key, n, x) FROM STDIN')));
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  const check = await sluice.client.query('SELECT sum(count)::int8 AS n FROM v0');
  if (Number(check.rows[0].n) !== rows) throw new Error(`view counted ${check.rows[0].n} of ${rows} rows`);
  report({ bench: 'copy', views, rows, keys: 1000, seconds: +seconds.toFixed(3), rows_per_s: Math.round(rows / seconds), cpu_s: +((used.user + used.system) / 1e6).toFixed(2) });
  await sluice.stop();
}

async function benchInsert(views: number, rows: number): Promise<void> {
  const sluice = await startSluice();
  await createViews(sluice.client, views);
  const perStatement = 1000;
  const statements: string[] = [];
  for (let start = 0; start < rows; start += perStatement) {
    const values: string[] = [];
    for (let i = start; i < start + perStatement; i++) values.push(`('key_${i % 1000}', ${i % 1000}, ${(i % 977) / 8})`);
    statements.push(`INSERT INTO events (key, n, x) VALUES ${values.join(', ')}`);
  }
  const t0 = performance.now();
  for (const sql of statements) await sluice.client.query(sql);
  const seconds = (performance.now() - t0) / 1000;
  report({ bench: 'insert', views, rows, rows_per_statement: perStatement, keys: 1000, seconds: +seconds.toFixed(3), rows_per_s: Math.round(rows / seconds) });
  await sluice.stop();
}

/** The least any server must do to put PGlite on a socket: answer startup, then pump bytes. */
function startProtocolPump(store: PgliteStore): Promise<{ port: number; close(): void }> {
  const server = net.createServer((socket) => {
    const parser = new FrontendParser();
    let started = false;
    let queue = Promise.resolve();
    socket.on('data', (chunk) => {
      if (!started) {
        for (const m of parser.feed(chunk)) {
          if (m.type === 'sslRequest') socket.write('N');
          if (m.type === 'startup') {
            started = true;
            socket.write(Buffer.concat([authenticationOk(), parameterStatus('server_version', '18.6'), parameterStatus('client_encoding', 'UTF8'), readyForQuery('I')]));
          }
        }
        return;
      }
      queue = queue.then(async () => {
        const out = await store.db.execProtocolRaw(new Uint8Array(chunk));
        socket.write(Buffer.from(out));
      });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() })));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function timeQueries(run: () => Promise<unknown>, iterations: number): Promise<{ p50_us: number; p99_us: number; mean_us: number }> {
  for (let i = 0; i < 200; i++) await run();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await run();
    samples.push((performance.now() - t0) * 1000);
  }
  samples.sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { p50_us: Math.round(percentile(samples, 0.5)), p99_us: Math.round(percentile(samples, 0.99)), mean_us: Math.round(mean) };
}

async function benchRead(): Promise<void> {
  const sluice = await startSluice();
  await createViews(sluice.client, 1);
  await pipeline(Readable.from(copyChunks(100_000, 1000)), sluice.client.query(copyFrom('COPY events (key, n, x) FROM STDIN')));
  const pump = await startProtocolPump(sluice.store);
  const direct = new pg.Client({ host: '127.0.0.1', port: pump.port, user: 'sluice', database: 'sluice' });
  await direct.connect();
  const sql = "SELECT * FROM v0 WHERE key = 'key_421'";
  const iterations = 3000;
  for (const mode of ['simple', 'extended'] as const) {
    const query = (client: pg.Client) => (mode === 'simple' ? client.query(sql) : client.query({ text: 'SELECT * FROM v0 WHERE key = $1', values: ['key_421'] }));
    const through = await timeQueries(() => query(sluice.client), iterations);
    const straight = await timeQueries(() => query(direct), iterations);
    report({ bench: 'read', protocol: mode, query: 'point query on a view', through_sluice: through, straight_pglite_over_socket: straight, ratio_mean: +(through.mean_us / straight.mean_us).toFixed(3) });
  }
  const inProcess = await timeQueries(() => sluice.store.db.query(sql), iterations);
  report({ bench: 'read', protocol: 'in-process db.query (reference, no socket)', latency: inProcess });
  await direct.end();
  pump.close();
  await sluice.stop();
}

const rows = Number(process.env.BENCH_ROWS ?? 1_000_000);
if (wants('copy')) {
  await benchCopy(1, rows);
  await benchCopy(10, rows);
}
if (wants('insert')) {
  await benchInsert(1, Math.min(rows, 200_000));
  await benchInsert(10, Math.min(rows, 200_000));
}
if (wants('read')) await benchRead();
