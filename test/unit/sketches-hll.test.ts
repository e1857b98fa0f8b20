import { describe, expect, it } from 'vitest';
import { SqlError } from '../../engine/errors.ts';
import { FORMAT_VERSION, HyperLogLog, hllAgg, hllCardinality, hllUnion, SketchKind } from '../../engine/sketches/index.ts';
import { hex, perSecond, rng } from '../support/random.ts';

/** n distinct strings drawn from a seeded generator (distinct by construction). */
function distinctValues(n: number, seed: number): string[] {
  const r = rng(seed);
  const prefix = Math.floor(r() * 1e9).toString(36);
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

function build(values: Iterable<string | number>, p?: number): HyperLogLog {
  const h = HyperLogLog.create({ p });
  for (const v of values) h.add(v);
  return h;
}

describe('HyperLogLog', () => {
  it('counts small cardinalities within 1 (sparse precision 25)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const values = distinctValues(2000, seed);
      const h = HyperLogLog.create();
      for (let n = 0; n < 100; n++) {
        expect(Math.abs(h.cardinality() - n)).toBeLessThanOrEqual(1);
        h.add(values[n]);
      }
      for (let n = 100; n < 2000; n++) h.add(values[n]);
      expect(h.isSparse).toBe(true);
      expect(Math.abs(h.cardinality() - 2000)).toBeLessThanOrEqual(2000 * 0.005);
    }
  });

  it('ignores NULL and repeats, and 5, 5n and "5" are one value', () => {
    const h = HyperLogLog.create();
    for (let i = 0; i < 10; i++) h.add(null).add(5).add(5n).add('5').add(7);
    expect(h.cardinality()).toBe(2);
  });

  it('is within 2% at 1,000,000 distinct values (several seeds)', () => {
    const errors: string[] = [];
    for (const seed of [1, 2, 3, 4, 5]) {
      const h = HyperLogLog.create();
      const r = rng(seed);
      const base = Math.floor(r() * 2 ** 30);
      for (let i = 0; i < 1_000_000; i++) h.add(base + i);
      const error = (h.cardinality() - 1_000_000) / 1_000_000;
      errors.push(`${(error * 100).toFixed(2)}%`);
      expect(Math.abs(error)).toBeLessThan(0.02);
    }
    console.log(`hll p=14 relative error at 1e6 distinct (5 seeds): ${errors.join(' ')}`);
  });

  it('stays accurate through the sparse to dense switch and at mid range', () => {
    for (const n of [2049, 5000, 20000, 100000]) {
      const worst = Math.max(
        ...[1, 2, 3].map((seed) => Math.abs(build(distinctValues(n, seed + n)).estimate() - n) / n),
      );
      expect(worst).toBeLessThan(0.03);
    }
  });

  it('merge equals the sketch of the union, bit for bit', () => {
    const cases: [number, number][] = [
      [10, 20], // sparse + sparse -> sparse
      [1500, 1500], // sparse + sparse -> dense
      [50, 100000], // sparse + dense
      [100000, 50], // dense + sparse
      [60000, 70000], // dense + dense
    ];
    for (const [na, nb] of cases) {
      const a = distinctValues(na, na);
      const b = distinctValues(nb, nb + 1).concat(a.slice(0, Math.min(na, 5))); // overlapping
      const merged = build(a).merge(build(b));
      const direct = build([...a, ...b]);
      expect(merged.isSparse).toBe(direct.isSparse);
      expect(hex(merged.serialize())).toBe(hex(direct.serialize()));
      expect(merged.registers()).toEqual(direct.registers());
      expect(merged.cardinality()).toBe(direct.cardinality());
    }
  });

  it('merges across precisions at the lower one, exactly', () => {
    for (const [na, nb] of [
      [30, 40],
      [500, 90000],
      [90000, 500],
      [90000, 90000],
    ]) {
      const a = distinctValues(na, 100 + na);
      const b = distinctValues(nb, 200 + nb);
      const merged = build(a, 14).merge(build(b, 11));
      expect(merged.p).toBe(11);
      expect(hex(merged.serialize())).toBe(hex(build([...a, ...b], 11).serialize()));
      const other = build(b, 11).merge(build(a, 14));
      expect(hex(other.serialize())).toBe(hex(merged.serialize()));
    }
  });

  it('merge is associative and commutative on three parts', () => {
    for (const sizes of [
      [5, 17, 9],
      [800, 900, 700],
      [40000, 3, 25000],
    ]) {
      const [a, b, c] = sizes.map((n, i) => build(distinctValues(n, n * 7 + i)));
      const left = a.clone().merge(b).merge(c);
      const right = a.clone().merge(b.clone().merge(c));
      const swapped = c.clone().merge(a).merge(b);
      expect(hex(left.serialize())).toBe(hex(right.serialize()));
      expect(hex(left.serialize())).toBe(hex(swapped.serialize()));
      expect(hex(hllUnion(a, b, c).serialize())).toBe(hex(left.serialize()));
    }
  });

  it('round-trips through serialize/deserialize, sparse and dense', () => {
    for (const n of [0, 1, 100, 2048, 2049, 50000]) {
      for (const p of [4, 10, 14, 18]) {
        const h = build(distinctValues(n, n + p), p);
        const bytes = h.serialize();
        expect(bytes[0]).toBe(FORMAT_VERSION);
        expect(bytes[1]).toBe(SketchKind.hll);
        const back = HyperLogLog.deserialize(bytes);
        expect(back.p).toBe(p);
        expect(back.isSparse).toBe(h.isSparse);
        expect(back.cardinality()).toBe(h.cardinality());
        expect(hex(back.serialize())).toBe(hex(bytes));
        // A read-back state keeps working.
        back.add('one more value');
        h.add('one more value');
        expect(hex(back.serialize())).toBe(hex(h.serialize()));
      }
    }
  });

  it('rejects unknown versions, other kinds and corrupt bytes with SQLSTATE 22P03', () => {
    const bytes = build(['a', 'b']).serialize();
    const newer = bytes.slice();
    newer[0] = FORMAT_VERSION + 1;
    const wrongKind = bytes.slice();
    wrongKind[1] = SketchKind.bloom;
    for (const bad of [newer, wrongKind, bytes.slice(0, bytes.length - 1), new Uint8Array([FORMAT_VERSION]), Uint8Array.of(...bytes, 0)]) {
      let error: unknown;
      try {
        HyperLogLog.deserialize(bad);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SqlError);
      expect((error as SqlError).code).toBe('22P03');
    }
    expect(() => HyperLogLog.create({ p: 3 })).toThrow(/p must be an integer between 4 and 18/);
  });

  it('reports throughput and state sizes', () => {
    const strings = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    const many = Array.from({ length: 200000 }, (_, i) => `user-${i}`);
    const h = HyperLogLog.create();
    for (let i = 0; i < 100000; i++) h.add(strings[i % 1000]); // warm up
    const hot = perSecond(5_000_000, () => {
      for (let i = 0; i < 5_000_000; i++) h.add(strings[i % 1000]);
    });
    const dense = HyperLogLog.create();
    const cold = perSecond(5_000_000, () => {
      for (let i = 0; i < 5_000_000; i++) dense.add(many[i % 200000]);
    });
    const ints = HyperLogLog.create();
    const intRate = perSecond(5_000_000, () => {
      for (let i = 0; i < 5_000_000; i++) ints.add(i);
    });
    console.log(
      `hll adds/s: short strings ${(hot / 1e6).toFixed(2)}M (1k distinct), ${(cold / 1e6).toFixed(2)}M (200k distinct), ints ${(intRate / 1e6).toFixed(2)}M`,
    );
    const sizes = [0, 10, 100, 1000, 2048, 2049, 1_000_000].map((n) => {
      const s = build(distinctValues(Math.min(n, 200000), n));
      return `${n}: ${s.serialize().length} B`;
    });
    console.log(`hll p=14 serialized bytes by distinct count: ${sizes.join(', ')}`);
    expect(hllCardinality(hllAgg(['x', 'y', 'x']))).toBe(2);
  });
});
