/** States of 10,000 groups must fit comfortably: live and serialized sizes per group, reported. */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  BloomFilter,
  BucketAgg,
  CountMinSketch,
  ExactSet,
  HyperLogLog,
  TDigest,
  TopK,
  type Sketch,
} from '../../engine/sketches/index.ts';

const GROUPS = 10_000;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap plus ArrayBuffer bytes after a full collection (backing stores are released in the background). */
async function memory(): Promise<number> {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 50));
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function measure(name: string, perGroup: number, make: () => Sketch, fill: (s: Sketch, g: number, i: number) => void): Promise<number> {
  const before = await memory();
  const states: Sketch[] = [];
  for (let g = 0; g < GROUPS; g++) {
    const s = make();
    for (let i = 0; i < perGroup; i++) fill(s, g, i);
    states.push(s);
  }
  const live = ((await memory()) - before) / GROUPS;
  let serialized = 0;
  for (const s of states) serialized += s.serialize().length;
  console.log(
    `${name}, ${perGroup} values per group: ~${Math.round(live)} B live, ${Math.round(serialized / GROUPS)} B serialized per group (${((live * GROUPS) / 2 ** 20).toFixed(1)} MiB live for ${GROUPS} groups)`,
  );
  return live * GROUPS;
}

describe('memory for 10,000 groups', () => {
  it('reports live and serialized bytes per group', async () => {
    const runs: (() => Promise<number>)[] = [
      () => measure('hll p=14', 50, () => HyperLogLog.create(), (s, g, i) => void (s as HyperLogLog).add(`u${g}-${i}`)),
      () => measure('hll p=14', 2100, () => HyperLogLog.create(), (s, g, i) => void (s as HyperLogLog).add(`u${g}-${i}`)),
      () => measure('tdigest 200', 50, () => TDigest.create(), (s, g, i) => void (s as TDigest).add(g + i * 0.37)),
      () => measure('tdigest 200', 500, () => TDigest.create(), (s, g, i) => void (s as TDigest).add(((g * 7919 + i * 104729) % 10007) / 3)),
      () => measure('count-min 1360x6', 50, () => CountMinSketch.create(), (s, g, i) => void (s as CountMinSketch).add(i % 20)),
      () => measure('topk k=10', 200, () => TopK.create({ k: 10 }), (s, g, i) => void (s as TopK).add(`v${(i * i) % 150}`)),
      () => measure('bloom 0.02/16384', 50, () => BloomFilter.create(), (s, g, i) => void (s as BloomFilter).add(`u${g}-${i}`)),
      () => measure('set', 50, () => ExactSet.create(), (s, g, i) => void (s as ExactSet).add(i)),
      () => measure('bucket_agg', 50, () => BucketAgg.create(), (s, g, i) => void (s as BucketAgg).add(`u${i}`, i % 4)),
    ];
    let sum = 0;
    for (const run of runs) sum += await run();
    // Generous: the point is the report; 10k groups of every kind together stay well under a GiB.
    expect(sum).toBeLessThan(2 ** 30);
  });
});
