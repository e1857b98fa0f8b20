import { spawnSync } from 'node:child_process';
import { Kafka, Partitioners, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataProbe, startKafka, type KafkaBroker } from '../support/kafka.ts';

// The real broker the Kafka connector's tests use (test/support/kafka.ts): version from KAFKA_VERSION or the
// default; the first run fetches the jars with Maven (cached in ~/.cache/sluice), hence the long hook timeout.
const TOPIC = 'harness';
const COUNT = 1000;

function client(brokers: string): Kafka {
  return new Kafka({ clientId: 'kafka-broker-test', brokers: [brokers], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
}

async function produce(kafka: Kafka, from: number, count: number): Promise<void> {
  // Idempotent: a send retried under load (2 cores, other suites running) must not write the messages twice.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = Array.from({ length: count }, (_, i) => ({ key: `k${(from + i) % 17}`, value: JSON.stringify({ n: from + i }) }));
  await producer.send({ topic: TOPIC, messages, acks: -1 });
  await producer.disconnect();
}

/** Reads the whole topic with a new consumer group; resolves with every `n` seen, by partition. */
async function consumeAll(kafka: Kafka, expected: number): Promise<Map<number, number[]>> {
  const consumer = kafka.consumer({ groupId: `g-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const seen = new Map<number, number[]>();
  let total = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${total} of ${expected} messages in 30 s`)), 30_000);
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          const list = seen.get(batch.partition) ?? [];
          for (const m of batch.messages) list.push((JSON.parse(m.value!.toString()) as { n: number }).n);
          seen.set(batch.partition, list);
          total += batch.messages.length;
          if (total >= expected) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return seen;
}

async function offsets(admin: Admin): Promise<Record<number, string>> {
  return Object.fromEntries((await admin.fetchTopicOffsets(TOPIC)).map((p) => [p.partition, p.high]));
}

describe('Kafka broker harness', () => {
  let broker: KafkaBroker;
  let kafka: Kafka;

  beforeAll(async () => {
    broker = await startKafka({ ignoreEnvBrokers: true });
    kafka = client(broker.brokers);
  }, 600_000);

  afterAll(async () => {
    await broker?.stop({ removeData: true });
  }, 60_000);

  it('creates a 3-partition topic and round-trips 1000 messages', async () => {
    expect(broker.brokers).toMatch(/^127\.0\.0\.1:\d+$/);
    const admin = kafka.admin();
    await admin.connect();
    const cluster = await admin.describeCluster();
    expect(cluster.brokers).toHaveLength(1);
    expect(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }], waitForLeaders: true })).toBe(true);
    const metadata = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    expect(metadata.topics[0].partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);

    // auto.create.topics.enable=false: producing to a missing topic fails instead of creating it.
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, retry: { retries: 1 } });
    await producer.connect();
    await expect(producer.send({ topic: 'no-such-topic', messages: [{ value: 'x' }] })).rejects.toThrow();
    await producer.disconnect();
    expect(await admin.listTopics()).not.toContain('no-such-topic');

    await produce(kafka, 0, COUNT);
    const seen = await consumeAll(kafka, COUNT);
    expect([...seen.keys()].sort()).toEqual([0, 1, 2]); // keys spread over every partition
    const all = [...seen.values()].flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    for (const list of seen.values()) expect(list).toEqual([...list].sort((a, b) => a - b)); // in order per partition
    await admin.disconnect();
  });

  it('kcat (Debian package "kcat") lists the topic', () => {
    if (spawnSync('kcat', ['-V']).error) {
      // Debian/Ubuntu package "kcat" (formerly "kafkacat"); installed here when we are root.
      const install = process.getuid?.() === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', 'kcat'], { encoding: 'utf8' }) : undefined;
      if (install?.status !== 0) {
        throw new Error(`kcat is missing: install it with \`apt-get update && apt-get install -y kcat\`\n${install?.stderr ?? ''}`);
      }
    }
    const r = spawnSync('kcat', ['-b', broker.brokers, '-L', '-t', TOPIC], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`topic "${TOPIC}" with 3 partitions`);
  });

  /** Retries while partitions have no leader yet (right after a broker restart). */
  async function untilLed<T>(read: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await read();
      } catch (err) {
        if (attempt >= 50 || !/leader/i.test((err as Error).message)) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  it('keeps the data across kill() and restart()', async () => {
    let admin = kafka.admin();
    await admin.connect();
    const before = await offsets(admin);
    await admin.disconnect();
    expect(Object.values(before).reduce((a, b) => a + Number(b), 0)).toBe(COUNT);

    broker.kill();
    await expect(metadataProbe('127.0.0.1', Number(broker.brokers.split(':')[1]), 1000)).rejects.toThrow();
    await broker.restart();

    admin = kafka.admin();
    await admin.connect();
    // Partition leadership comes back a moment after the broker answers metadata.
    expect(await untilLed(() => offsets(admin))).toEqual(before);
    await admin.disconnect();
    await produce(kafka, COUNT, 100);
    const seen = await consumeAll(kafka, COUNT + 100);
    expect([...seen.values()].flat().sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT + 100 }, (_, i) => i));

    // A clean stop and start keeps it too.
    await broker.restart();
    admin = kafka.admin();
    await admin.connect();
    expect(Object.values(await untilLed(() => offsets(admin))).reduce((a, b) => a + Number(b), 0)).toBe(COUNT + 100);
    await admin.disconnect();
  });

  it('points at KAFKA_BROKERS when set, and refuses to stop a broker it did not start', async () => {
    const saved = process.env.KAFKA_BROKERS;
    process.env.KAFKA_BROKERS = broker.brokers;
    try {
      const external = await startKafka();
      expect(external.external).toBe(true);
      expect(external.brokers).toBe(broker.brokers);
      await expect(external.stop()).rejects.toThrow(/needs a broker started by the test/);
      await expect(external.restart()).rejects.toThrow(/needs a broker started by the test/);
      expect(() => external.kill()).toThrow(/needs a broker started by the test/);
    } finally {
      if (saved === undefined) delete process.env.KAFKA_BROKERS;
      else process.env.KAFKA_BROKERS = saved;
    }
  });
});
