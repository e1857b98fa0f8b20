/** What the benchmarks share: an in-memory Sluice, JSON-line reports, a pre-filled Kafka topic. */
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CompressionTypes, type Producer } from 'kafkajs';
import pg from 'pg';
import { pino } from 'pino';
import { PgliteStore } from '../connectors/postgres/index.ts';
import { SluiceService } from '../sql/index.ts';
import { WireServer } from '../sql/wire/server.ts';

export function report(result: Record<string, unknown>): void {
  console.log(JSON.stringify(result));
}

/** Sluice over an in-memory PGlite (no Kafka), on a free port, with a connected client. */
export async function startMemorySluice() {
  const store = await PgliteStore.open(undefined);
  const service = await SluiceService.start(store);
  const server = new WireServer(service, pino({ level: 'silent' }));
  const { port } = await server.listen(0, '127.0.0.1');
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'sluice', database: 'sluice' });
  await client.connect();
  return {
    store,
    port,
    client,
    async stop() {
      await client.end();
      await server.close();
      await service.close();
    },
  };
}

/** Produces `total` messages (`message(i)` as value) in batches of 5,000; returns the seconds it took. */
export async function prefillTopic(producer: Producer, topic: string, total: number, message: (i: number) => string): Promise<number> {
  const started = performance.now();
  const batch = 5000;
  for (let i = 0; i < total; i += batch) {
    await producer.send({
      topic,
      compression: CompressionTypes.None,
      messages: Array.from({ length: Math.min(batch, total - i) }, (_, j) => ({ value: message(i + j) })),
    });
  }
  return +((performance.now() - started) / 1000).toFixed(2);
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

/** User + system CPU of a process, the children it has reaped, and its live children (PostgreSQL's backends). */
export function processTreeCpuSeconds(root: number): number {
  if (!root) return 0;
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(entry);
    const ppid = Number(fields[1]);
    if (pid !== root && ppid !== root) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
    if (pid === root) ticks += Number(fields[13]) + Number(fields[14]);
  }
  return ticks / CLK_TCK;
}
