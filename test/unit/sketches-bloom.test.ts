import { describe, expect, it } from 'vitest';
import { SqlError } from '../../engine/errors.ts';
import {
  bloomAgg,
  bloomCardinality,
  bloomContains,
  BloomFilter,
  bloomIntersectionAgg,
  bloomUnionAgg,
  FORMAT_VERSION,
  SketchKind,
} from '../../engine/sketches/index.ts';
import { hex, perSecond } from '../support/random.ts';

const range = (from: number, to: number, prefix = 'k') => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

describe('bloom filter', () => {
  it("sizes itself from PipelineDB's defaults (p = 0.02, n = 16384)", () => {
    const b = BloomFilter.create();
    const bits = Math.ceil((-16384 * Math.log(0.02)) / Math.LN2 ** 2);
    expect(b.m).toBe(Math.ceil(bits / 32) * 32);
    expect(b.k).toBe(6);
    expect(() => BloomFilter.create({ p: 1 })).toThrow(SqlError);
    expect(() => BloomFilter.create({ n: 0 })).toThrow(SqlError);
  });

  it('has no false negatives and about the configured false-positive rate at n items', () => {
    const b = bloomAgg(range(0, 16384));
    for (const v of range(0, 16384)) expect(b.contains(v)).toBe(true);
    let fp = 0;
    const probes = range(0, 100_000, 'other');
    for (const v of probes) if (bloomContains(b, v)) fp++;
    const rate = fp / probes.length;
    expect(rate).toBeLessThan(0.025);
    expect(rate).toBeGreaterThan(0.01);
    const estimate = bloomCardinality(b);
    expect(Math.abs(estimate - 16384) / 16384).toBeLessThan(0.03);
    console.log(`bloom p=0.02 n=16384: false-positive rate ${(rate * 100).toFixed(2)}%, cardinality estimate ${estimate} of 16384`);
    expect(bloomCardinality(bloomAgg(range(0, 50)))).toBe(50);
    expect(bloomCardinality(BloomFilter.create())).toBe(0);
    expect(bloomContains(BloomFilter.create(), 'x')).toBe(false);
    expect(bloomContains(bloomAgg([5n]), 5)).toBe(true);
  });

  it('union equals the filter of the union, bit for bit, in any order', () => {
    for (const [a, b] of [
      [range(0, 10), range(5, 30)],
      [range(0, 10), range(0, 5000)],
      [range(0, 8000), range(4000, 12000)],
    ]) {
      const direct = bloomAgg([...a, ...b]);
      expect(hex(bloomAgg(a).union(bloomAgg(b)).serialize())).toBe(hex(direct.serialize()));
      expect(hex(bloomAgg(b).merge(bloomAgg(a)).serialize())).toBe(hex(direct.serialize()));
    }
    const parts = [range(0, 3), range(0, 3000, 'x'), range(0, 100, 'y')].map((p) => bloomAgg(p));
    const left = parts[0].clone().union(parts[1]).union(parts[2]);
    const right = parts[0].clone().union(parts[1].clone().union(parts[2]));
    expect(hex(left.serialize())).toBe(hex(right.serialize()));
    expect(hex(bloomUnionAgg(parts[2], parts[0], parts[1]).serialize())).toBe(hex(left.serialize()));
  });

  it('intersection is the bitwise AND and keeps every common item', () => {
    for (const [a, b] of [
      [range(0, 20), range(10, 40)],
      [range(0, 6000), range(3000, 9000)],
      [range(0, 20), range(0, 6000)],
    ]) {
      const fa = bloomAgg(a);
      const fb = bloomAgg(b);
      const both = bloomIntersectionAgg(fa, fb);
      const other = fb.clone().intersect(fa);
      expect(hex(both.serialize())).toBe(hex(other.serialize()));
      const common = a.filter((x) => b.includes(x));
      for (const v of common) expect(both.contains(v)).toBe(true);
      // Bit-level: every set bit of the intersection is set in both.
      expect(both.bitCount()).toBeLessThanOrEqual(Math.min(fa.bitCount(), fb.bitCount()));
      const union = fa.clone().union(fb);
      expect(both.bitCount()).toBe(fa.bitCount() + fb.bitCount() - union.bitCount());
    }
    expect(() => BloomFilter.create().intersect(BloomFilter.create({ n: 100 }))).toThrow(SqlError);
  });

  it('round-trips through serialize/deserialize and reports sizes', () => {
    const sizes: string[] = [];
    for (const n of [0, 1, 100, 1000, 16384]) {
      const b = bloomAgg(range(0, n));
      const bytes = b.serialize();
      expect([bytes[0], bytes[1]]).toEqual([FORMAT_VERSION, SketchKind.bloom]);
      const back = BloomFilter.deserialize(bytes);
      expect(hex(back.serialize())).toBe(hex(bytes));
      expect(back.bitCount()).toBe(b.bitCount());
      for (const v of range(0, Math.min(n, 100))) expect(back.contains(v)).toBe(true);
      sizes.push(`${n}: ${bytes.length} B`);
    }
    const rate = perSecond(1_000_000, () => {
      const b = BloomFilter.create();
      for (let i = 0; i < 1_000_000; i++) b.add(i);
    });
    console.log(`bloom adds/s: ${(rate / 1e6).toFixed(2)}M; serialized bytes (p=0.02, n=16384) by items: ${sizes.join(', ')}`);
    const bad = BloomFilter.create().serialize();
    bad[0] = 0;
    expect(() => BloomFilter.deserialize(bad)).toThrow(/unsupported bloom format version 0/);
  });
});
