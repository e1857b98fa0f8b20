/**
 * Aggregate-family benchmark. Each result is one JSON line on stdout.
 *
 *   npm run bench:aggregates                  # all four families
 *   npm run bench:aggregates -- exact topk    # some of: exact, hll, tdigest, topk, expressions, expressions_store
 *   BENCH_ROWS=200000 npm run bench:aggregates
 *
 * For each family, a fresh in-process Sluice (PGlite in memory, as bench/run.ts), a fresh
 * stream s (k int4, u text, x float8) and ONE continuous view grouped by k:
 *
 *   exact    SELECT k, count(*), sum(x), avg(x), min(x), max(x) FROM s GROUP BY k
 *   hll      SELECT k, count(DISTINCT u) FROM s GROUP BY k                              (HyperLogLog)
 *   tdigest  SELECT k, percentile_cont(0.99) WITHIN GROUP (ORDER BY x) FROM s GROUP BY k (t-digest)
 *   topk     SELECT k, topk_agg(u, 10) FROM s GROUP BY k                               (top-k sketch)
 *   expressions        WHERE, arguments and a FILTER the engine compiles (see `families` below)
 *   expressions_store  the same view evaluated by the store (SLUICE_COMPILE_EXPRESSIONS=off)
 *
 * Rows: k uniform over 10,000 values, u uniform over 1,000,000 values ('u123456'), x uniform
 * float8 in [0, 1000); the same rows (seeded PRNG, generated before the clock starts) for every
 * family. They go through the wire with COPY … FROM STDIN, BENCH_COPY_ROWS (100,000) rows per
 * COPY statement, one after the other; the clock covers all the COPY statements.
 *
 * Reported per family (bench: 'aggregates'):
 *   rows_per_s, seconds, cpu_s       throughput (cpu_s: this process, i.e. Sluice + PGlite + client)
 *   groups                           rows of the view's _mrel
 *   mrel_bytes, bytes_per_group      pg_total_relation_size('<view>_mrel') (heap + TOAST + index)
 *                                    right after ingest, so including the dead row versions left
 *                                    by the per-batch upserts (PGlite runs no autovacuum)
 *   mrel_*_vacuum_full               the same after VACUUM FULL of the _mrel: live rows only
 *   state_bytes_avg                  avg per group of the sum of pg_column_size over the _mrel's
 *                                    non-key columns (the aggregates' states and stored results)
 *   columns                          per non-key column: type, avg pg_column_size, and for bytea
 *                                    (serialized sketches) avg octet_length (uncompressed size)
 * plus a check: exact's sum(count) must equal the rows sent; hll's summed estimate is compared
 * with the exact number of distinct (k, u) pairs sent.
 */
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { rng } from '../test/support/random.ts';
import { report, startMemorySluice } from './support.ts';

const rows = Number(process.env.BENCH_ROWS ?? 1_000_000);
const rowsPerCopy = Number(process.env.BENCH_COPY_ROWS ?? 100_000);
/** Rows per CopyData buffer written within one COPY. */
const rowsPerBuffer = 10_000;
const keys = 10_000;
const distinctU = 1_000_000;

const families = {
  exact: 'SELECT k, count(*), sum(x), avg(x), min(x), max(x) FROM s GROUP BY k',
  hll: 'SELECT k, count(DISTINCT u) FROM s GROUP BY k',
  tdigest: 'SELECT k, percentile_cont(0.99) WITHIN GROUP (ORDER BY x) FROM s GROUP BY k',
  topk: 'SELECT k, topk_agg(u, 10) FROM s GROUP BY k',
  expressions: "SELECT k, count(*), sum(x * 2) AS s, max(x / 2 + k) AS m, count(*) FILTER (WHERE u LIKE 'u1%') AS u1 FROM s WHERE x >= 0 AND u IS NOT NULL GROUP BY k",
  // The same view with expression compiling off (SLUICE_COMPILE_EXPRESSIONS=off): the store evaluates every batch.
  expressions_store: "SELECT k, count(*), sum(x * 2) AS s, max(x / 2 + k) AS m, count(*) FILTER (WHERE u LIKE 'u1%') AS u1 FROM s WHERE x >= 0 AND u IS NOT NULL GROUP BY k",
} as const;
type Family = keyof typeof families;

const which = new Set(process.argv.slice(2));
for (const name of which) if (!(name in families)) throw new Error(`unknown family '${name}' (one of ${Object.keys(families).join(', ')})`);
const wants = (name: string) => which.size === 0 || which.has(name);

const startSluice = startMemorySluice;

interface Data {
  /** One entry per COPY statement: its CopyData buffers. */
  copies: Buffer[][];
  distinctKeys: number;
  distinctPairs: number;
}

function generate(): Data {
  const random = rng(42);
  const copies: Buffer[][] = [];
  const seenKeys = new Set<number>();
  const seenPairs = new Set<number>();
  for (let start = 0; start < rows; start += rowsPerCopy) {
    const end = Math.min(rows, start + rowsPerCopy);
    const buffers: Buffer[] = [];
    for (let b = start; b < end; b += rowsPerBuffer) {
      let text = '';
      for (let i = b; i < Math.min(end, b + rowsPerBuffer); i++) {
        const k = Math.floor(random() * keys);
        const u = Math.floor(random() * distinctU);
        const x = random() * 1000;
        seenKeys.add(k);
        seenPairs.add(k * distinctU + u);
        text += `${k}\tu${u}\t${x.toFixed(6)}\n`;
      }
      buffers.push(Buffer.from(text));
    }
    copies.push(buffers);
  }
  return { copies, distinctKeys: seenKeys.size, distinctPairs: seenPairs.size };
}

async function mrelSizes(client: pg.Client, mrel: string): Promise<{ total: number; table: number; indexes: number }> {
  const r = await client.query(`SELECT pg_total_relation_size('${mrel}')::int8 AS total, pg_table_size('${mrel}')::int8 AS "table", pg_indexes_size('${mrel}')::int8 AS indexes`);
  return { total: Number(r.rows[0].total), table: Number(r.rows[0].table), indexes: Number(r.rows[0].indexes) };
}

async function benchFamily(family: Family, data: Data): Promise<void> {
  const sluice = await startSluice();
  const { client } = sluice;
  const view = `agg_${family}`;
  const mrel = `${view}_mrel`;
  await client.query('CREATE STREAM s (k int4, u text, x float8)');
  if (family === 'expressions_store') process.env.SLUICE_COMPILE_EXPRESSIONS = 'off';
  await client.query(`CREATE VIEW ${view} AS ${families[family]}`);
  delete process.env.SLUICE_COMPILE_EXPRESSIONS;
  const evaluation = (await client.query(`SELECT sluice.view_evaluation('${view}') AS e`)).rows[0].e as string;

  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (const buffers of data.copies) {
    await pipeline(Readable.from(buffers), client.query(copyFrom('COPY s (k, u, x) FROM STDIN')));
  }
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);

  const groups = Number((await client.query(`SELECT count(*)::int8 AS n FROM ${mrel}`)).rows[0].n);
  if (groups !== data.distinctKeys) throw new Error(`${family}: ${groups} groups in ${mrel}, expected ${data.distinctKeys}`);
  const check: Record<string, unknown> = {};
  if (family === 'exact') {
    const counted = Number((await client.query(`SELECT sum(count)::int8 AS n FROM ${view}`)).rows[0].n);
    if (counted !== rows) throw new Error(`exact: view counted ${counted} of ${rows} rows`);
    check.counted_rows = counted;
  } else if (family === 'hll') {
    const estimate = Number((await client.query(`SELECT sum(count)::int8 AS n FROM ${view}`)).rows[0].n);
    check.distinct_pairs_sent = data.distinctPairs;
    check.hll_sum_estimate = estimate;
    check.hll_sum_error_pct = +((100 * (estimate - data.distinctPairs)) / data.distinctPairs).toFixed(3);
  }

  // The _mrel's columns besides the group key: the aggregates' states (and, for count(DISTINCT) and
  // percentile_cont, the stored result beside the sketch).
  const columns = (
    await client.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 AND column_name <> 'k' ORDER BY ordinal_position`,
      [mrel],
    )
  ).rows as { column_name: string; data_type: string }[];
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const selects = columns.flatMap((c, i) => [
    `avg(pg_column_size(${quote(c.column_name)}))::float8 AS size${i}`,
    ...(c.data_type === 'bytea' ? [`avg(octet_length(${quote(c.column_name)}))::float8 AS octets${i}`] : []),
  ]);
  const sizes = (await client.query(`SELECT ${selects.join(', ')} FROM ${mrel}`)).rows[0];
  const columnReport: Record<string, Record<string, unknown>> = {};
  let stateBytes = 0;
  columns.forEach((c, i) => {
    const size = Number(sizes[`size${i}`]);
    stateBytes += size;
    columnReport[c.column_name] = {
      type: c.data_type,
      avg_column_size: +size.toFixed(1),
      ...(c.data_type === 'bytea' ? { avg_octet_length: +Number(sizes[`octets${i}`]).toFixed(1) } : {}),
    };
  });

  const asIs = await mrelSizes(client, mrel);
  let compacted: { total: number; table: number; indexes: number } | undefined;
  let vacuumError: string | undefined;
  try {
    await client.query(`VACUUM FULL ${mrel}`);
    compacted = await mrelSizes(client, mrel);
  } catch (error) {
    vacuumError = (error as Error).message;
  }

  report({
    bench: 'aggregates',
    family,
    view: families[family],
    evaluation,
    rows,
    rows_per_copy: rowsPerCopy,
    keys,
    groups,
    seconds: +seconds.toFixed(3),
    rows_per_s: Math.round(rows / seconds),
    cpu_s: +((used.user + used.system) / 1e6).toFixed(2),
    mrel_bytes: asIs.total,
    mrel_table_bytes: asIs.table,
    mrel_index_bytes: asIs.indexes,
    bytes_per_group: Math.round(asIs.total / groups),
    ...(compacted
      ? {
          mrel_bytes_vacuum_full: compacted.total,
          mrel_table_bytes_vacuum_full: compacted.table,
          mrel_index_bytes_vacuum_full: compacted.indexes,
          bytes_per_group_vacuum_full: Math.round(compacted.total / groups),
        }
      : { vacuum_full_error: vacuumError }),
    state_bytes_avg: +stateBytes.toFixed(1),
    columns: columnReport,
    ...check,
  });
  await sluice.stop();
}

const t0 = performance.now();
const data = generate();
report({ bench: 'aggregates-data', rows, copies: data.copies.length, keys: data.distinctKeys, distinct_pairs: data.distinctPairs, generate_s: +((performance.now() - t0) / 1000).toFixed(2) });
for (const family of Object.keys(families) as Family[]) {
  if (wants(family)) await benchFamily(family, data);
}
