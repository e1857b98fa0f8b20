/**
 * Point reads of a view through Sluice against the same query sent straight
 * to the PostgreSQL Sluice manages (its Unix socket), in one run, interleaved.
 *
 *   npm run bench:reads                 # BENCH_SECONDS (default 3) per measurement, BENCH_RUNS (3)
 *
 * For the simple and the extended protocol, with 1 and 8 clients: queries/s,
 * p50 and p99 latency, and the ratios through/straight (the aims: p50 ≤ 1.15×,
 * q/s with 8 clients ≥ 0.85×). CPU seconds per million queries of this process
 * (Sluice and the clients) and of PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { startSluice } from '../test/support/sluice.ts';
import { processTreeCpuSeconds, report } from './support.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const keys = 10_000;

const sluice = await startSluice();
const setup = await sluice.client();
await setup.query('CREATE STREAM events (key text, n int4)');
await setup.query('CREATE VIEW per_key AS SELECT key, count(*), sum(n) FROM events GROUP BY key');
let copy = '';
for (let i = 0; i < 200_000; i++) copy += `key_${i % keys}\t${i % 100}\n`;
await pipeline(Readable.from([Buffer.from(copy)]), setup.query(copyFrom('COPY events FROM STDIN')));
const socketDir = path.join(sluice.dataDir, 'pg');
const postmaster = Number(readFileSync(path.join(socketDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

type Route = 'through_sluice' | 'straight_to_postgres';
function config(route: Route): pg.ClientConfig {
  return route === 'through_sluice'
    ? { host: '127.0.0.1', port: sluice.port, user: 'sluice', database: 'sluice' }
    : { host: socketDir, port: 5432, user: 'postgres', database: 'sluice' };
}

const postgresCpu = () => processTreeCpuSeconds(postmaster);

async function measure(route: Route, protocol: 'simple' | 'extended', clients: number) {
  const connections = await Promise.all(
    Array.from({ length: clients }, async () => {
      const c = new pg.Client(config(route));
      await c.connect();
      return c;
    }),
  );
  let k = 0;
  const query = (c: pg.Client) => {
    const key = `key_${(k++ * 7919) % keys}`;
    return protocol === 'simple' ? c.query(`SELECT * FROM per_key WHERE key = '${key}'`) : c.query({ text: 'SELECT * FROM per_key WHERE key = $1', values: [key], name: 'point' });
  };
  for (const c of connections) for (let i = 0; i < 200; i++) await query(c);
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const pgBefore = postgresCpu();
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    connections.map(async (c) => {
      while (performance.now() < until) {
        const start = performance.now();
        await query(c);
        latencies.push((performance.now() - start) * 1000);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  const pgUsed = postgresCpu() - pgBefore;
  await Promise.all(connections.map((c) => c.end()));
  latencies.sort((a, b) => a - b);
  const perMillion = 1e6 / latencies.length;
  return {
    qps: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length / 2)],
    p99: latencies[Math.floor(latencies.length * 0.99)],
    clientCpu: ((used.user + used.system) / 1e6) * perMillion,
    postgresCpu: pgUsed * perMillion,
  };
}

const median = (values: number[]) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const protocol of ['simple', 'extended'] as const) {
  for (const clients of [1, 8]) {
    const samples: Record<Route, Awaited<ReturnType<typeof measure>>[]> = { through_sluice: [], straight_to_postgres: [] };
    for (let r = 0; r < runs; r++) for (const route of ['straight_to_postgres', 'through_sluice'] as Route[]) samples[route].push(await measure(route, protocol, clients));
    const summary = (route: Route) => ({
      qps_min: Math.round(Math.min(...samples[route].map((s) => s.qps))),
      qps_median: Math.round(median(samples[route].map((s) => s.qps))),
      p50_us: Math.round(median(samples[route].map((s) => s.p50))),
      p99_us: Math.round(median(samples[route].map((s) => s.p99))),
      this_process_cpu_s_per_1m_queries: +median(samples[route].map((s) => s.clientCpu)).toFixed(1),
      postgres_cpu_s_per_1m_queries: +median(samples[route].map((s) => s.postgresCpu)).toFixed(1),
    });
    const through = summary('through_sluice');
    const straight = summary('straight_to_postgres');
    report({
      bench: 'point-read',
      protocol,
      clients,
      runs,
      through_sluice: through,
      straight_to_postgres: straight,
      p50_ratio: +(through.p50_us / straight.p50_us).toFixed(2),
      qps_ratio: +(through.qps_median / straight.qps_median).toFixed(2),
    });
  }
}
await sluice.stop({ removeData: true });
