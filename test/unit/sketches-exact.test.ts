/** The exact states: set_agg, exact_count_distinct, keyed_max/min, first_values, bucket_agg; and the shared entry points. */
import { describe, expect, it } from 'vitest';
import { SqlError } from '../../engine/errors.ts';
import {
  bucketAgg,
  BucketAgg,
  bucketCardinalities,
  bucketCardinality,
  bucketIds,
  deserializeSketch,
  ExactSet,
  exactCountDistinct,
  FirstValues,
  firstValues,
  FORMAT_VERSION,
  HyperLogLog,
  KeyedExtreme,
  keyedMax,
  keyedMin,
  mergeSketch,
  setAgg,
  setCardinality,
  SKETCH_AGGREGATES,
  SketchKind,
  TDigest,
  type Sketch,
} from '../../engine/sketches/index.ts';
import type { Value } from '../../engine/values/index.ts';
import { hex, rng } from '../support/random.ts';

describe('set_agg / exact_count_distinct', () => {
  it('keeps each SQL value once and returns them sorted', () => {
    const s = setAgg(['b', 'a', null, 'b', 'é', 'z', '😀', '\uffff']);
    expect(s.values()).toEqual(['a', 'b', 'z', 'é', '\uffff', '😀']);
    expect(setCardinality(s)).toBe(6);
    expect(setAgg([3, 1, 2, 3n, -0, 0, NaN, NaN, 2.5]).values()).toEqual([-0, 1, 2, 2.5, 3, NaN]);
    expect(exactCountDistinct([1, 2, 2, 3, null, 1n])).toBe(3);
    expect(setAgg([true, false, true]).values()).toEqual([false, true]);
  });

  it('merge equals the set of the union, bit for bit, associatively', () => {
    const r = rng(3);
    const parts = [0, 1, 2].map(() => Array.from({ length: 500 }, () => Math.floor(r() * 800)));
    const [a, b, c] = parts.map((p) => setAgg(p));
    const direct = setAgg(parts.flat());
    expect(hex(a.clone().merge(b).merge(c).serialize())).toBe(hex(direct.serialize()));
    expect(hex(c.clone().merge(a.clone().merge(b)).serialize())).toBe(hex(direct.serialize()));
    const back = ExactSet.deserialize(direct.serialize());
    expect(back.values()).toEqual(direct.values());
    const mixed = setAgg(['x', 1, 2n ** 70n, -1.5, true, 'ü']);
    expect(ExactSet.deserialize(mixed.serialize()).values()).toEqual(mixed.values());
  });
});

describe('keyed_max / keyed_min', () => {
  it('returns the value of the extreme key, ignoring NULL keys', () => {
    const rows: [Value, Value][] = [
      [3, 'c'],
      [null, 'null key'],
      [7, 'g'],
      [1, 'a'],
      [7, null],
    ];
    expect(keyedMax(rows)).toBe('g');
    expect(keyedMin(rows)).toBe('a');
    expect(keyedMax([])).toBeNull();
    expect(keyedMax([[5, 'x']])).toBe('x');
    expect(keyedMin([[5, null]])).toBeNull();
  });

  it('merges in any order to the same state and round-trips', () => {
    const r = rng(8);
    const rows = Array.from({ length: 300 }, () => [Math.floor(r() * 20), `v${Math.floor(r() * 50)}`] as [Value, Value]);
    for (const mode of ['max', 'min'] as const) {
      const parts = [0, 100, 200].map((start) => {
        const s = KeyedExtreme.create({ mode });
        for (const [k, v] of rows.slice(start, start + 100)) s.add(k, v);
        return s;
      });
      const left = parts[0].clone().merge(parts[1]).merge(parts[2]);
      const right = parts[2].clone().merge(parts[0].clone().merge(parts[1]));
      expect(hex(left.serialize())).toBe(hex(right.serialize()));
      const back = KeyedExtreme.deserialize(left.serialize());
      expect(back.result()).toBe(left.result());
      expect(back.mode).toBe(mode);
      expect(left.result()).toBe(mode === 'max' ? keyedMax(rows) : keyedMin(rows));
    }
    expect(() => KeyedExtreme.create({ mode: 'max' }).merge(KeyedExtreme.create({ mode: 'min' }))).toThrow(SqlError);
  });
});

describe('first_values', () => {
  it('keeps the n first values in order, duplicates included', () => {
    expect(firstValues(3, [5, 1, 4, 1, null, 9, 2])).toEqual([1, 1, 2]);
    expect(firstValues(3, [5, 1, 4, 1, 9, 2], true)).toEqual([9, 5, 4]);
    expect(firstValues(10, ['b', 'a'])).toEqual(['a', 'b']);
    expect(() => FirstValues.create({ n: 0 })).toThrow(SqlError);
  });

  it('merges to the first values of the union and round-trips', () => {
    const r = rng(4);
    const parts = [0, 1, 2].map(() => Array.from({ length: 200 }, () => Math.floor(r() * 1000)));
    const states = parts.map((p) => {
      const s = FirstValues.create({ n: 10 });
      for (const v of p) s.add(v);
      return s;
    });
    const merged = states[1].clone().merge(states[2]).merge(states[0]);
    expect(merged.values()).toEqual(firstValues(10, parts.flat()));
    const back = FirstValues.deserialize(merged.serialize());
    expect(back.values()).toEqual(merged.values());
    expect(hex(back.serialize())).toBe(hex(merged.serialize()));
  });
});

describe('bucket_agg', () => {
  it('puts each value in the bucket it was last added to', () => {
    const b = bucketAgg([
      ['u1', 1],
      ['u2', 1],
      ['u3', 1],
      ['u1', 2],
      ['u2', 3],
      ['u1', 3],
      [null, 5],
    ]);
    expect(bucketIds(b)).toEqual([1, 3]);
    expect(bucketCardinalities(b)).toEqual([1, 2]);
    expect(bucketCardinality(b, 3)).toBe(2);
    expect(bucketCardinality(b, 2)).toBe(0);
    expect(b.cardinality()).toBe(3);
    expect(() => b.add('x', 40000)).toThrow(SqlError);
  });

  it('with timestamps the latest wins whatever the arrival or merge order', () => {
    const rows: [string, number, number][] = [];
    const r = rng(6);
    for (let i = 0; i < 3000; i++) rows.push([`user${Math.floor(r() * 500)}`, Math.floor(r() * 5), Math.floor(r() * 1e6)]);
    const latest = new Map<string, [number, number]>();
    for (const [u, id, ts] of rows) {
      const cur = latest.get(u);
      if (!cur || ts > cur[1] || (ts === cur[1] && id > cur[0])) latest.set(u, [id, ts]);
    }
    const want = new Map<number, number>();
    for (const [id] of latest.values()) want.set(id, (want.get(id) ?? 0) + 1);
    const whole = bucketAgg(rows);
    const shuffled = bucketAgg(rows.slice().reverse());
    const parts = [0, 1000, 2000].map((s) => bucketAgg(rows.slice(s, s + 1000)));
    const merged = parts[2].clone().merge(parts[0]).merge(parts[1]);
    for (const s of [whole, shuffled, merged]) {
      expect(bucketIds(s)).toEqual([...want.keys()].sort((x, y) => x - y));
      expect(bucketIds(s).map((id) => bucketCardinality(s, id))).toEqual(bucketIds(s).map((id) => want.get(id)));
      expect(hex(s.serialize())).toBe(hex(whole.serialize()));
    }
    const back = BucketAgg.deserialize(whole.serialize());
    expect(bucketCardinalities(back)).toEqual(bucketCardinalities(whole));
    expect(hex(back.serialize())).toBe(hex(whole.serialize()));
    expect(whole.serialize().length).toBeLessThan(20 * 500 + 16);
  });
});

describe('shared entry points', () => {
  const samples: [string, Sketch][] = [
    ['hll', HyperLogLog.create().add('a')],
    ['tdigest', TDigest.create().add(1)],
    ['set', setAgg([1, 2])],
    ['keyed', KeyedExtreme.create({ mode: 'max' }).add(1, 'x')],
    ['first_values', FirstValues.create({ n: 2 }).add(3)],
    ['bucket', bucketAgg([['a', 1]])],
  ];

  it('deserializeSketch reads every kind; every state starts with the version and kind bytes', () => {
    const kinds = new Set<number>();
    // The layouts that SQL functions read (engine/sketch-functions.ts) are at version 2, the others at 1.
    const sqlReadable = new Set(['hll', 'tdigest', 'cms', 'topk', 'bloom', 'bucket']);
    for (const [name, s] of samples) {
      const bytes = s.serialize();
      expect([name, bytes[0]]).toEqual([name, sqlReadable.has(name) ? FORMAT_VERSION : 1]);
      kinds.add(bytes[1]);
      const back = deserializeSketch(bytes);
      expect(back.constructor).toBe(s.constructor);
      expect(hex(back.serialize())).toBe(hex(bytes));
      const newer = bytes.slice();
      newer[0] = FORMAT_VERSION + 1;
      expect(() => deserializeSketch(newer)).toThrow(SqlError);
    }
    expect(kinds.size).toBe(samples.length);
    expect(() => deserializeSketch(new Uint8Array([FORMAT_VERSION, 200]))).toThrow(SqlError);
    expect(() => deserializeSketch(new Uint8Array([]))).toThrow(SqlError);
    expect(() => mergeSketch(samples[0][1], samples[1][1] as never)).toThrow(SqlError);
  });

  it('SKETCH_AGGREGATES builds states from constant and per-row arguments', () => {
    const hll = SKETCH_AGGREGATES.hll_agg.create([12]) as HyperLogLog;
    SKETCH_AGGREGATES.hll_agg.add(hll, ['x']);
    expect(hll.p).toBe(12);
    expect(hll.cardinality()).toBe(1);
    const topk = SKETCH_AGGREGATES.topk_agg.create([3]);
    SKETCH_AGGREGATES.topk_agg.add(topk, ['a', 4]);
    expect(topk.serialize()[1]).toBe(SketchKind.topK);
    const bucket = SKETCH_AGGREGATES.bucket_agg.create([]) as BucketAgg;
    SKETCH_AGGREGATES.bucket_agg.add(bucket, ['a', 2, null]);
    SKETCH_AGGREGATES.bucket_agg.add(bucket, ['b', null]);
    expect(bucketIds(bucket)).toEqual([2]);
    for (const [name, agg] of Object.entries(SKETCH_AGGREGATES)) {
      const state = agg.create([]);
      expect(state.serialize()[1], name).toBe(agg.kind);
    }
  });
});
