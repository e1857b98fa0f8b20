/** What the benchmarks share: an in-memory Sluice, JSON-line reports, a pre-filled Kafka topic. */
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
