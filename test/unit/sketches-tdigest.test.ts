import { describe, expect, it } from 'vitest';
import { SqlError } from '../../engine/errors.ts';
import { distCdf, distQuantile, FORMAT_VERSION, percentileCont, SketchKind, TDigest } from '../../engine/sketches/index.ts';
import { exponential, hex, normal, perSecond, rng } from '../support/random.ts';

const N = 1_000_000;
const QUANTILES = [0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

const distributions: Record<string, (r: () => number) => number> = {
  uniform: (r) => r() * 100 - 50,
  normal: (r) => normal(r) * 10 + 3,
  exponential: (r) => exponential(r) * 2,
};

function sample(name: string, seed: number, n = N): Float64Array {
  const r = rng(seed);
  const gen = distributions[name];
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = gen(r);
  return data;
}

/** Fraction of the sorted data below x, and at or below x: an estimate's rank lies anywhere between. */
function rankError(sorted: Float64Array, x: number, q: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  const below = lo;
  hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  const atOrBelow = lo;
  const n = sorted.length;
  if (q * n >= below && q * n <= atOrBelow) return 0;
  return Math.min(Math.abs(below / n - q), Math.abs(atOrBelow / n - q));
}

function digestOf(data: Float64Array, compression?: number): TDigest {
  const d = TDigest.create({ compression });
  for (let i = 0; i < data.length; i++) d.add(data[i]);
  return d;
}

describe('t-digest', () => {
  for (const name of Object.keys(distributions)) {
    it(`keeps quantiles within 1% rank error on 1e6 ${name} values, also merged from 10 parts`, () => {
      const data = sample(name, name.length * 31);
      const sorted = data.slice().sort();
      const whole = digestOf(data);
      const parts = Array.from({ length: 10 }, () => TDigest.create());
      for (let i = 0; i < data.length; i++) parts[Math.floor((i * 10) / data.length)].add(data[i]);
      const merged = TDigest.create();
      for (const p of parts) merged.merge(p);
      // Interleaved parts as well (each part spans the whole range).
      const interleaved = Array.from({ length: 10 }, () => TDigest.create());
      for (let i = 0; i < data.length; i++) interleaved[i % 10].add(data[i]);
      const tree = interleaved[0].clone();
      for (let i = 1; i < 10; i += 3) tree.merge(interleaved[i].clone().merge(interleaved[i + 1] ?? TDigest.create()).merge(interleaved[i + 2] ?? TDigest.create()));

      let worst = 0;
      let worstMerged = 0;
      for (const q of QUANTILES) {
        worst = Math.max(worst, rankError(sorted, whole.quantile(q)!, q));
        worstMerged = Math.max(worstMerged, rankError(sorted, merged.quantile(q)!, q), rankError(sorted, tree.quantile(q)!, q));
      }
      expect(whole.quantile(0)).toBe(sorted[0]);
      expect(whole.quantile(1)).toBe(sorted[sorted.length - 1]);
      expect(worst).toBeLessThan(0.01);
      expect(worstMerged).toBeLessThan(0.01);
      expect(whole.count).toBe(N);
      expect(merged.count).toBe(N);

      // cdf is the inverse view: rank of x within 1% as well.
      let worstCdf = 0;
      for (const q of [0.01, 0.1, 0.5, 0.9, 0.99]) {
        const x = sorted[Math.floor(q * N)];
        worstCdf = Math.max(worstCdf, Math.abs(whole.cdf(x)! - q), Math.abs(merged.cdf(x)! - q));
      }
      expect(worstCdf).toBeLessThan(0.01);
      console.log(
        `tdigest ${name}: max rank error ${(worst * 100).toFixed(3)}% single, ${(worstMerged * 100).toFixed(3)}% merged, cdf ${(worstCdf * 100).toFixed(3)}%; ${whole.centroidCount()} centroids, ${whole.serialize().length} B`,
      );
    });
  }

  it('stays within bounds when a stored state absorbs many batch digests through bytea round trips', () => {
    const data = sample('exponential', 17);
    const sorted = data.slice().sort();
    let stored = TDigest.create().serialize();
    for (let b = 0; b < 500; b++) {
      const batch = digestOf(data.subarray(b * 2000, (b + 1) * 2000));
      stored = TDigest.deserialize(stored).merge(TDigest.deserialize(batch.serialize())).serialize();
    }
    const d = TDigest.deserialize(stored);
    expect(d.count).toBe(N);
    let worst = 0;
    for (const q of QUANTILES) worst = Math.max(worst, rankError(sorted, d.quantile(q)!, q));
    expect(worst).toBeLessThan(0.01);
    console.log(`tdigest after 500 stored-state merges: max rank error ${(worst * 100).toFixed(3)}%`);
  });

  it('merge is associative and commutative within bounds', () => {
    const data = sample('normal', 99, 300_000);
    const sorted = data.slice().sort();
    const [a, b, c] = [0, 1, 2].map((k) => digestOf(data.subarray(k * 100_000, (k + 1) * 100_000)));
    const left = a.clone().merge(b).merge(c);
    const right = a.clone().merge(b.clone().merge(c));
    const swapped = c.clone().merge(b).merge(a);
    for (const q of QUANTILES) {
      for (const d of [left, right, swapped]) expect(rankError(sorted, d.quantile(q)!, q)).toBeLessThan(0.005);
    }
    expect(left.count).toBe(right.count);
    expect(left.min).toBe(sorted[0]);
    expect(swapped.max).toBe(sorted[sorted.length - 1]);
  });

  it('percentile_cont is exact while every value is its own centroid, as PostgreSQL computes it', () => {
    const d = TDigest.create();
    for (const v of [4, 1, 3, 2]) d.add(v);
    expect(percentileCont(d, 0.5)).toBe(2.5);
    expect(percentileCont(d, [0, 0.25, 1])).toEqual([1, 1.75, 4]);
    expect(percentileCont(TDigest.create(), 0.5)).toBeNull();
    expect(() => percentileCont(d, 1.5)).toThrow('percentile value 1.5 is not between 0 and 1');
    const single = TDigest.create().add(7);
    expect(distQuantile(single, [0, 0.5, 1])).toEqual([7, 7, 7]);
    expect(distCdf(single, 6)).toBe(0);
    expect(distCdf(single, 8)).toBe(1);
    // Random small sets against the definition.
    const r = rng(5);
    for (let t = 0; t < 50; t++) {
      const values = Array.from({ length: 1 + Math.floor(r() * 60) }, () => Math.round(r() * 1000) / 10);
      const s = TDigest.create();
      for (const v of values) s.add(v);
      const sorted = values.slice().sort((x, y) => x - y);
      for (const q of [0, 0.1, 0.33, 0.5, 0.9, 1]) {
        const pos = q * (sorted.length - 1);
        const lo = Math.floor(pos);
        const want = sorted[lo] + (pos - lo) * ((sorted[Math.ceil(pos)] ?? sorted[lo]) - sorted[lo]);
        expect(s.percentileCont(q)).toBeCloseTo(want, 9);
      }
    }
  });

  it('ignores NULL and non-finite values, accepts bigint and numeric text', () => {
    const d = TDigest.create();
    d.add(null).add(NaN).add(Infinity).add(1).add(2n).add('3.5');
    expect(d.count).toBe(3);
    expect(d.quantile(1)).toBe(3.5);
    expect(TDigest.create().quantile(0.5)).toBeNull();
    expect(TDigest.create().cdf(0)).toBeNull();
  });

  it('round-trips through serialize/deserialize and rejects other versions', () => {
    for (const n of [0, 1, 5, 1000, 100_000]) {
      const d = digestOf(sample('exponential', n + 1, n), 100);
      const bytes = d.serialize();
      expect(bytes[0]).toBe(FORMAT_VERSION);
      expect(bytes[1]).toBe(SketchKind.tdigest);
      const back = TDigest.deserialize(bytes);
      expect(hex(back.serialize())).toBe(hex(bytes));
      expect(back.compression).toBe(100);
      expect(back.count).toBe(n);
      for (const q of QUANTILES) expect(back.quantile(q)).toBe(d.quantile(q));
    }
    const weighted = TDigest.create().addWeighted(1, 0.5).addWeighted(2, 2.25);
    const back = TDigest.deserialize(weighted.serialize());
    expect(back.count).toBe(2.75);
    const bad = weighted.serialize();
    bad[0] = FORMAT_VERSION + 1;
    expect(() => TDigest.deserialize(bad)).toThrow(SqlError);
    expect(() => TDigest.deserialize(bad.subarray(0, 1))).toThrow(SqlError);
  });

  it('reports throughput and state sizes', () => {
    const data = sample('normal', 3);
    const d = TDigest.create();
    const rate = perSecond(N, () => {
      for (let i = 0; i < N; i++) d.add(data[i]);
    });
    d.quantile(0.5);
    const sizes = [10, 1000, 100_000, N].map((n) => `${n}: ${digestOf(data.subarray(0, n)).serialize().length} B`);
    console.log(`tdigest adds/s: ${(rate / 1e6).toFixed(2)}M; serialized bytes (compression 200) by count: ${sizes.join(', ')}`);
  });
});
