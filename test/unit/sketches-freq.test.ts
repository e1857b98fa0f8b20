/** Count-min (freq_*) and top-k (topk_*). */
import { describe, expect, it } from 'vitest';
import { SqlError } from '../../engine/errors.ts';
import {
  CountMinSketch,
  FORMAT_VERSION,
  freq,
  freqAgg,
  freqMergeAgg,
  freqNorm,
  freqTotal,
  SketchKind,
  TopK,
  topk,
  topkAgg,
  topkFreqs,
  topkValues,
} from '../../engine/sketches/index.ts';
import { hex, perSecond, rng, zipf } from '../support/random.ts';

function zipfStream(seed: number, n: number, distinct: number, s: number): number[] {
  const next = zipf(rng(seed), distinct, s);
  return Array.from({ length: n }, () => next());
}

function exactCounts(values: Iterable<number | string>): Map<number | string, number> {
  const counts = new Map<number | string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

describe('count-min sketch', () => {
  it("sizes itself from PipelineDB's defaults", () => {
    const c = CountMinSketch.create();
    expect(c.width).toBe(Math.ceil(Math.E / 0.002));
    expect(c.width).toBe(1360);
    expect(c.depth).toBe(6);
    const d = CountMinSketch.create({ eps: 0.01, p: 0.99 });
    expect([d.width, d.depth]).toEqual([272, 5]);
    expect(() => CountMinSketch.create({ eps: 0 })).toThrow(SqlError);
  });

  it('never underestimates and stays within eps * total for nearly all values', () => {
    const stream = zipfStream(1, 200_000, 50_000, 1.05);
    const c = CountMinSketch.create();
    for (const v of stream) c.add(`item-${v}`);
    const counts = exactCounts(stream);
    let within = 0;
    for (const [v, n] of counts) {
      const est = c.frequency(`item-${v}`);
      expect(est).toBeGreaterThanOrEqual(n);
      if (est - n <= 0.002 * stream.length) within++;
    }
    expect(within / counts.size).toBeGreaterThanOrEqual(0.995);
    expect(freqTotal(c)).toBe(stream.length);
    expect(c.frequency('never added')).toBeLessThanOrEqual(0.002 * stream.length);
    expect(freqNorm(c, 'item-1')).toBeCloseTo(c.frequency('item-1') / stream.length, 12);
  });

  it('is exact for a handful of values and honours weights', () => {
    const c = freqAgg(['a', 'b', 'a', null, 'c', 'a']);
    expect([freq(c, 'a'), freq(c, 'b'), freq(c, 'c'), freq(c, 'zzz')]).toEqual([3, 1, 1, 0]);
    c.add('b', 10);
    expect(freq(c, 'b')).toBe(11);
    expect(freqTotal(c)).toBe(15);
    expect(freq(c, 5)).toBe(freq(c, 5n));
    // Counters past 2^32 stay exact.
    c.add('huge', 2 ** 32 + 5);
    c.add('huge', 2 ** 32);
    expect(freq(c, 'huge')).toBe(2 ** 33 + 5);
    expect(CountMinSketch.deserialize(c.serialize()).frequency('huge')).toBe(2 ** 33 + 5);
    expect(() => c.add('x', -1)).toThrow(SqlError);
  });

  it('merge equals the sketch of the union, bit for bit, and is associative', () => {
    for (const [na, nb] of [
      [10, 20],
      [10, 50_000],
      [50_000, 30_000],
    ]) {
      const a = zipfStream(na, na, 10_000, 1.1);
      const b = zipfStream(nb + 1, nb, 10_000, 1.1);
      const merged = freqAgg(a).merge(freqAgg(b));
      expect(hex(merged.serialize())).toBe(hex(freqAgg([...a, ...b]).serialize()));
      expect(hex(freqAgg(b).merge(freqAgg(a)).serialize())).toBe(hex(merged.serialize()));
    }
    const parts = [5, 20_000, 300].map((n, i) => freqAgg(zipfStream(i + 40, n, 5000, 1)));
    const left = parts[0].clone().merge(parts[1]).merge(parts[2]);
    const right = parts[0].clone().merge(parts[1].clone().merge(parts[2]));
    expect(hex(left.serialize())).toBe(hex(right.serialize()));
    expect(hex(freqMergeAgg(parts[0], parts[1], parts[2]).serialize())).toBe(hex(left.serialize()));
    expect(() => CountMinSketch.create().merge(CountMinSketch.create({ eps: 0.01 }))).toThrow(SqlError);
  });

  it('round-trips through serialize/deserialize', () => {
    for (const n of [0, 3, 100, 100_000]) {
      const c = freqAgg(zipfStream(n + 7, n, 20_000, 1.2));
      const bytes = c.serialize();
      expect([bytes[0], bytes[1]]).toEqual([FORMAT_VERSION, SketchKind.countMin]);
      const back = CountMinSketch.deserialize(bytes);
      expect(hex(back.serialize())).toBe(hex(bytes));
      for (const v of [1, 2, 3, 17, 999]) expect(back.frequency(v)).toBe(c.frequency(v));
      expect(back.totalCount()).toBe(n);
    }
    const bytes = CountMinSketch.create().serialize();
    bytes[1] = SketchKind.hll;
    expect(() => CountMinSketch.deserialize(bytes)).toThrow(/expected a cms state but found a hll state/);
  });

  it('reports throughput and state sizes', () => {
    const strings = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    const c = CountMinSketch.create();
    const rate = perSecond(2_000_000, () => {
      for (let i = 0; i < 2_000_000; i++) c.add(strings[i % 1000]);
    });
    const sizes = [0, 10, 100, 10_000, 1_000_000].map((n) => {
      const s = CountMinSketch.create();
      for (let i = 0; i < n; i++) s.add(i % 50_000);
      return `${n}: ${s.serialize().length} B`;
    });
    console.log(`count-min adds/s: ${(rate / 1e6).toFixed(2)}M; serialized bytes (1360x6) by adds: ${sizes.join(', ')}`);
  });
});

describe('top-k', () => {
  function exactTop(stream: number[], k: number): { value: number; frequency: number }[] {
    return [...exactCounts(stream)]
      .map(([value, frequency]) => ({ value: value as number, frequency }))
      .sort((a, b) => b.frequency - a.frequency || a.value - b.value)
      .slice(0, k);
  }

  it('finds the exact top-k of Zipf streams, whole and merged from parts', () => {
    for (const [seed, s, k] of [
      [1, 1.0, 10],
      [2, 1.2, 10],
      [3, 0.9, 5],
      [4, 1.1, 25],
    ]) {
      const stream = zipfStream(seed, 500_000, 100_000, s);
      const want = exactTop(stream, k);
      const whole = topkAgg(stream, k);
      expect(topkValues(whole)).toEqual(want.map((e) => e.value));
      // Frequencies are upper bounds, over by at most total / capacity (Space-Saving's guarantee).
      let worst = 0;
      topk(whole).forEach((e, i) => {
        expect(e.frequency).toBeGreaterThanOrEqual(want[i].frequency);
        expect(e.frequency - want[i].frequency).toBeLessThanOrEqual(stream.length / whole.capacity);
        worst = Math.max(worst, (e.frequency - want[i].frequency) / want[i].frequency);
      });
      console.log(`topk zipf s=${s} k=${k}: top-k exact, frequencies over by at most ${(worst * 100).toFixed(2)}%`);
      const parts = Array.from({ length: 10 }, () => TopK.create({ k }));
      stream.forEach((v, i) => parts[Math.floor(i / 50_000)].add(v));
      const merged = parts.reduce((acc, p) => acc.merge(p), TopK.create({ k }));
      expect(topkValues(merged)).toEqual(want.map((e) => e.value));
      expect(merged.totalCount()).toBe(stream.length);
    }
  });

  it('keeps the top-k when a stored state absorbs many batch summaries through bytea round trips', () => {
    const stream = zipfStream(21, 500_000, 100_000, 1.0);
    const want = exactTop(stream, 10);
    let stored = TopK.create({ k: 10 }).serialize();
    for (let b = 0; b < 100; b++) {
      const batch = topkAgg(stream.slice(b * 5000, (b + 1) * 5000), 10);
      stored = TopK.deserialize(stored).merge(TopK.deserialize(batch.serialize())).serialize();
    }
    const t = TopK.deserialize(stored);
    expect(topkValues(t)).toEqual(want.map((e) => e.value));
    topk(t).forEach((e, i) => expect(e.frequency).toBeGreaterThanOrEqual(want[i].frequency));
  });

  it('is exact below capacity, orders ties by value and honours weights', () => {
    const t = topkAgg(['b', 'a', 'c', 'a', 'b', null, 'd'], 3);
    expect(topk(t)).toEqual([
      { value: 'a', frequency: 2 },
      { value: 'b', frequency: 2 },
      { value: 'c', frequency: 1 },
    ]);
    t.add('d', 5);
    expect(topkValues(t)).toEqual(['d', 'a', 'b']);
    expect(topkFreqs(t)).toEqual([6, 2, 2]);
    const w = topkAgg(
      [
        [1, 5],
        [2, 3],
        [1n, 1],
      ] as const,
      2,
    );
    expect(topk(w)).toEqual([
      { value: 1, frequency: 6 },
      { value: 2, frequency: 3 },
    ]);
  });

  it('merge is commutative, and exact for summaries below capacity', () => {
    const a = topkAgg(zipfStream(9, 100_000, 20_000, 1.1), 10);
    const b = topkAgg(zipfStream(10, 100_000, 20_000, 1.1), 10);
    expect(hex(a.clone().merge(b).serialize())).toBe(hex(b.clone().merge(a).serialize()));
    const x = zipfStream(11, 300, 50, 1);
    const y = zipfStream(12, 300, 50, 1);
    const z = zipfStream(13, 300, 50, 1);
    const sep = topkAgg(x, 5).merge(topkAgg(y, 5)).merge(topkAgg(z, 5));
    const other = topkAgg(z, 5).merge(topkAgg(x, 5).merge(topkAgg(y, 5)));
    expect(hex(sep.serialize())).toBe(hex(topkAgg([...x, ...y, ...z], 5).serialize()));
    expect(hex(other.serialize())).toBe(hex(sep.serialize()));
    expect(() => TopK.create({ k: 5 }).merge(TopK.create({ k: 6 }))).toThrow(SqlError);
  });

  it('round-trips through serialize/deserialize', () => {
    const t = topkAgg([...zipfStream(5, 50_000, 5000, 1).map((v) => `v${v}`), 'x', 7, 8n, true, 1.5] as never[], 10);
    const bytes = t.serialize();
    expect([bytes[0], bytes[1]]).toEqual([FORMAT_VERSION, SketchKind.topK]);
    const back = TopK.deserialize(bytes);
    expect(hex(back.serialize())).toBe(hex(bytes));
    expect(topk(back)).toEqual(topk(t));
    back.add('v1', 3);
    t.add('v1', 3);
    expect(hex(back.serialize())).toBe(hex(t.serialize()));
    console.log(`topk k=10 (capacity ${t.capacity}) serialized bytes: ${bytes.length} B`);
  });
});
