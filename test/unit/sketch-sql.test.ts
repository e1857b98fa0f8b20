/**
 * The version-2 sketch layouts as the store's SQL functions read them: states
 * written by the JS sketches give the same answers in PostgreSQL (PGlite),
 * and hashes computed in SQL equal the engine's.
 */
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeAggregatesSql } from '../../engine/aggregates.ts';
import { sketchFunctionsSql } from '../../engine/sketch-functions.ts';
import { BloomFilter, BucketAgg, CountMinSketch, HyperLogLog, KeyedExtreme, TDigest, TopK, murmur3x64, normalizeNumericText, sqlHash } from '../../engine/sketches/index.ts';
import { valueText } from '../../engine/sketches/topk.ts';
import { rng, zipf } from '../support/random.ts';

let db: PGlite;

beforeAll(async () => {
  db = await PGlite.create();
  await db.exec(`CREATE SCHEMA sluice; ${sketchFunctionsSql} ${storeAggregatesSql}`);
});

afterAll(async () => {
  await db.close();
});

async function rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query<T>(sql, params)).rows;
}

describe('sketch states read in SQL', () => {
  it('topk/topk_values/topk_freqs read what TopK.serialize wrote, for every value type', async () => {
    const next = zipf(rng(3), 2000, 1.1);
    const t = TopK.create({ k: 7 });
    for (let i = 0; i < 20_000; i++) t.add(`v${next()}`);
    const mixed = TopK.create({ k: 10 });
    for (const [v, w] of [['héllo ☃', 3], [7, 5], [8n, 2], [true, 4], [1.5, 1], [-0.25e-7, 6], ['', 2]] as const) mixed.add(v, w);
    for (const sketch of [t, mixed, TopK.create({ k: 3 })]) {
      const bytes = sketch.serialize();
      expect([bytes[0], bytes[1]]).toEqual([2, 4]);
      const back = TopK.deserialize(bytes);
      expect(back.top()).toEqual(sketch.top());
      const sql = await rows<{ value: string; frequency: number }>('SELECT value, frequency::float8 AS frequency FROM topk($1)', [bytes]);
      // Values come back as PostgreSQL's text of them.
      const texts = sketch.top().map((e) => valueText(e.value)[1]);
      expect(sql).toEqual(sketch.top().map((e, i) => ({ value: texts[i], frequency: e.frequency })));
      const [arrays] = await rows<{ vs: string[]; fs: string[] }>('SELECT topk_values($1) AS vs, topk_freqs($1)::text[] AS fs', [bytes]);
      expect(arrays.vs).toEqual(texts);
      if (sketch === mixed) expect(texts).toContain('-2.5e-08');
      expect(arrays.fs).toEqual(sketch.topFrequencies().map(String));
    }
    await expect(db.query('SELECT * FROM topk($1)', [new Uint8Array([1, 4, 0])])).rejects.toThrow(/unsupported topk format version 1/);
    await expect(db.query('SELECT * FROM topk($1)', [new Uint8Array([2, 1, 0])])).rejects.toThrow(/expected a topk state/);
  });

  it('hll_cardinality equals HyperLogLog.cardinality, and hll_union / hll_union_agg give the bytes HyperLogLog.merge gives', async () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const make = (p: number, from: number, count: number) => {
      const h = HyperLogLog.create({ p });
      for (let i = from; i < from + count; i++) h.add(`u${i}`);
      return h;
    };
    const samples = [make(14, 0, 0), make(14, 0, 1), make(14, 0, 900), make(14, 0, 3000), make(14, 500, 200_000), make(10, 0, 50), make(12, 100, 40_000)];
    for (const h of samples) {
      const [row] = await rows<{ n: string }>('SELECT hll_cardinality($1)::text AS n', [h.serialize()]);
      expect(Number(row.n)).toBe(h.cardinality());
    }
    for (const [a, b] of [[1, 2], [2, 2], [2, 3], [3, 4], [2, 5], [4, 6], [5, 6], [6, 0], [3, 2]]) {
      const want = samples[a].clone().merge(samples[b]);
      const [row] = await rows<{ u: Uint8Array; n: string }>('SELECT hll_union($1, $2) AS u, hll_cardinality(hll_union($1, $2))::text AS n', [samples[a].serialize(), samples[b].serialize()]);
      expect(hex(row.u)).toBe(hex(want.serialize()));
      expect(Number(row.n)).toBe(want.cardinality());
    }
    const parts = [make(14, 0, 1000), make(14, 500, 1000), make(14, 1200, 5000)];
    const [agg] = await rows<{ u: Uint8Array }>('SELECT hll_union_agg(s) AS u FROM unnest($1::bytea[]) AS s', [parts.map((h) => h.serialize())]);
    expect(hex(agg.u)).toBe(hex(parts[0].clone().merge(parts[1]).merge(parts[2]).serialize()));
    // A format-1 state (what count(DISTINCT) views stored before) is still read by the engine.
    const v1 = new Uint8Array([1, 1, 14, 0, 1, 129, 1]);
    expect(HyperLogLog.deserialize(v1).cardinality()).toBe(1);
  });

  it('sluice.sketch_hash(sluice.sketch_text(v)) equals the engine\'s sqlHash of PostgreSQL\'s text of v', async () => {
    const texts = ['', 'a', 'héllo ☃ 𝄞', 'x'.repeat(1000), '-0.25', 'NaN', 't', '12345678901234567890', ...Array.from({ length: 200 }, (_, i) => `v${i * 7919}`)];
    const got = await rows<{ h1: string; h2: string }>('SELECT h.h1::text, h.h2::text FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n), sluice.sketch_hash(sluice.sketch_text(u.t)) AS h ORDER BY u.n', [texts]);
    texts.forEach((t, i) => {
      const h = sqlHash(t);
      expect([Number(got[i].h1), Number(got[i].h2)]).toEqual([h[0], h[1]]);
    });
    // Non-text values hash as their ::text (the engine reads a view's arguments as ::text too: booleans are 'true'); numerics without trailing zeros, as the engine normalizes them.
    const typed = await rows<{ v: string; h1: string; h2: string }>(`SELECT v, h.h1::text, h.h2::text FROM (VALUES
      (sluice.sketch_text(42), 42::text), (sluice.sketch_text(-7::int8), '-7'), (sluice.sketch_text(1.50::numeric), '1.50'),
      (sluice.sketch_text(2.000::numeric), '2.000'), (sluice.sketch_text(0.1::float8), '0.1'), (sluice.sketch_text(true), 'true')) AS x(t, v),
      sluice.sketch_hash(x.t) AS h`);
    for (const row of typed) {
      const h = sqlHash(/^-?\d+\.\d+$/.test(row.v) && row.v.endsWith('0') ? normalizeNumericText(row.v) : row.v);
      expect([row.v, Number(row.h1), Number(row.h2)]).toEqual([row.v, h[0], h[1]]);
    }
    expect([...sqlHash(42)]).toEqual([...sqlHash('42')]);
  });

  it('freq/freq_total/freq_norm read what CountMinSketch.serialize wrote, sparse and dense', async () => {
    const next = zipf(rng(5), 3000, 1.05);
    for (const [n, params] of [[0, {}], [50, {}], [30_000, {}], [30_000, { eps: 0.01, p: 0.9 }]] as const) {
      const c = CountMinSketch.create(params);
      const values = Array.from({ length: n }, () => `item-${next()}`);
      for (const v of values) c.add(v);
      c.add('weighted', 7);
      const bytes = c.serialize();
      expect([bytes[0], bytes[1]]).toEqual([2, 3]);
      expect(CountMinSketch.deserialize(bytes).serialize()).toEqual(bytes);
      const probe = ['weighted', 'never-added', ...new Set(values.slice(0, 300))];
      const got = await rows<{ f: string }>('SELECT freq($1, p)::text AS f FROM unnest($2::text[]) WITH ORDINALITY AS u(p, i) ORDER BY i', [bytes, probe]);
      expect(got.map((r) => Number(r.f))).toEqual(probe.map((v) => c.frequency(v)));
      const [t] = await rows<{ t: string; norm: number }>("SELECT freq_total($1)::text AS t, freq_norm($1, 'weighted'::text) AS norm", [bytes]);
      expect(Number(t.t)).toBe(c.totalCount());
      expect(t.norm).toBeCloseTo(c.normalizedFrequency('weighted'), 12);
    }
  });

  it('bloom_contains/bloom_cardinality read what BloomFilter.serialize wrote, sparse and dense', async () => {
    for (const [n, params] of [[0, {}], [40, {}], [5000, {}], [3000, { p: 0.1, n: 1000 }]] as const) {
      const b = BloomFilter.create(params);
      for (let i = 0; i < n; i++) b.add(`m${i}`);
      const bytes = b.serialize();
      expect([bytes[0], bytes[1]]).toEqual([2, 5]);
      expect(BloomFilter.deserialize(bytes).serialize()).toEqual(bytes);
      const probe = [...Array.from({ length: Math.min(n, 300) }, (_, i) => `m${i}`), ...Array.from({ length: 300 }, (_, i) => `other${i}`)];
      const got = await rows<{ c: boolean }>('SELECT bloom_contains($1, p) AS c FROM unnest($2::text[]) WITH ORDINALITY AS u(p, i) ORDER BY i', [bytes, probe]);
      expect(got.map((r) => r.c)).toEqual(probe.map((v) => b.contains(v)));
      const [card] = await rows<{ n: string }>('SELECT bloom_cardinality($1)::text AS n', [bytes]);
      expect(Number(card.n)).toBe(b.cardinality());
    }
  });

  it('dist_quantile/dist_cdf give the doubles TDigest.quantile/cdf give, and float8 decoding is exact', async () => {
    const r = rng(9);
    // (-0 as a parameter arrives as 0: its literal is checked below.)
    const doubles = [0, 1, -1.5, 0.1, 1e-310, -5e-324, 1.7976931348623157e308, Math.PI, 123456.789, 2 ** -1022, Infinity, -Infinity];
    const enc = (v: number) => {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v);
      return b;
    };
    for (const v of doubles) {
      const [row] = await rows<{ v: number }>('SELECT sluice.sk_f64($1, 0) AS v', [enc(v)]);
      expect(Object.is(row.v, v) || row.v === v).toBe(true);
    }
    const digests = [TDigest.create(), TDigest.create().add(5), TDigest.create(), TDigest.create({ compression: 50 }), TDigest.create()];
    for (let i = 0; i < 20; i++) digests[2].add(Math.floor(r() * 10));
    for (let i = 0; i < 50_000; i++) digests[3].add(Math.exp(r() * 10));
    for (let i = 0; i < 20_000; i++) digests[4].add((r() - 0.5) * 1000);
    for (const d of digests) {
      const bytes = d.serialize();
      expect([bytes[0], bytes[1]]).toEqual([2, 2]);
      const back = TDigest.deserialize(bytes);
      const qs = [0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1, ...Array.from({ length: 20 }, () => r())];
      const got = await rows<{ v: number | null }>('SELECT dist_quantile($1, q) AS v FROM unnest($2::float8[]) WITH ORDINALITY AS u(q, i) ORDER BY i', [bytes, qs]);
      expect(got.map((g) => g.v)).toEqual(qs.map((q) => back.quantile(q)));
      const xs = [-1e9, 1e9, ...qs.map((q) => back.quantile(q) ?? 0), ...Array.from({ length: 20 }, () => (r() - 0.5) * 2000)];
      const cdf = await rows<{ v: number | null }>('SELECT dist_cdf($1, x) AS v FROM unnest($2::float8[]) WITH ORDINALITY AS u(x, i) ORDER BY i', [bytes, xs]);
      expect(cdf.map((g) => g.v)).toEqual(xs.map((x) => back.cdf(x)));
    }
    await expect(db.query('SELECT dist_quantile($1, 1.5)', [digests[1].serialize()])).rejects.toThrow(/between 0 and 1/);
  });
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

  it('bloom_union_agg / bloom_intersection_agg give the bytes BloomFilter.union / intersect give, sparse and dense', async () => {
    const make = (from: number, n: number, params = {}) => {
      const b = BloomFilter.create(params);
      for (let i = from; i < from + n; i++) b.add(`m${i}`);
      return b;
    };
    const pairs = [
      [make(0, 100), make(50, 100)],
      [make(0, 400), make(400, 400)],
      [make(0, 3000), make(1500, 3000)],
      [make(0, 3000), make(2900, 50)],
      [make(0, 0), make(0, 10)],
      [make(0, 200, { p: 0.1, n: 1000 }), make(100, 2000, { p: 0.1, n: 1000 })],
    ];
    for (const [a, b] of pairs) {
      const [row] = await rows<{ u: Uint8Array; i: Uint8Array }>('SELECT bloom_union_agg(s) AS u, bloom_intersection_agg(s) AS i FROM unnest($1::bytea[]) AS s', [[a.serialize(), null, b.serialize()]]);
      expect(hex(row.u)).toBe(hex(a.clone().union(b).serialize()));
      expect(hex(row.i)).toBe(hex(a.clone().intersect(b).serialize()));
    }
    const three = [make(0, 500), make(300, 500), make(450, 500)];
    const [row] = await rows<{ u: Uint8Array; i: Uint8Array }>('SELECT bloom_union_agg(s) AS u, bloom_intersection_agg(s) AS i FROM unnest($1::bytea[]) AS s', [three.map((b) => b.serialize())]);
    expect(hex(row.u)).toBe(hex(three[0].clone().union(three[1]).union(three[2]).serialize()));
    expect(hex(row.i)).toBe(hex(three[0].clone().intersect(three[1]).intersect(three[2]).serialize()));
    await expect(db.query('SELECT bloom_union_agg(s) FROM unnest($1::bytea[]) AS s', [[make(0, 5).serialize(), make(0, 5, { n: 100 }).serialize()]])).rejects.toThrow(/different sizes/);
  });

  it('freq_merge_agg / freq_add give the bytes CountMinSketch.merge / add give', async () => {
    const next = zipf(rng(13), 3000, 1.05);
    const make = (n: number, params = {}) => {
      const c = CountMinSketch.create(params);
      for (let i = 0; i < n; i++) c.add(`item-${next()}`);
      return c;
    };
    for (const [a, b] of [[make(20), make(30)], [make(400), make(400)], [make(20_000), make(20_000)], [make(20_000), make(5)], [make(0), make(0)]]) {
      const [row] = await rows<{ m: Uint8Array }>('SELECT freq_merge_agg(s) AS m FROM unnest($1::bytea[]) AS s', [[a.serialize(), null, b.serialize()]]);
      expect(hex(row.m)).toBe(hex(a.clone().merge(b).serialize()));
      const [added] = await rows<{ one: Uint8Array; five: Uint8Array; none: Uint8Array; int: Uint8Array }>(
        "SELECT freq_add($1, 'item-1'::text) AS one, freq_add($1, 'new'::text, 5) AS five, freq_add($1, NULL::text, 5) AS none, freq_add($1, 42, 3) AS int",
        [a.serialize()],
      );
      expect(hex(added.one)).toBe(hex(a.clone().add('item-1').serialize()));
      expect(hex(added.five)).toBe(hex(a.clone().add('new', 5).serialize()));
      expect(hex(added.none)).toBe(hex(a.serialize()));
      expect(hex(added.int)).toBe(hex(a.clone().add('42', 3).serialize()));
    }
    await expect(db.query('SELECT freq_merge_agg(s) FROM unnest($1::bytea[]) AS s', [[make(5).serialize(), make(5, { eps: 0.01 }).serialize()]])).rejects.toThrow(/different dimensions/);
    await expect(db.query("SELECT freq_add($1, 'x'::text, -1)", [make(5).serialize()])).rejects.toThrow(/non-negative/);
  });

  it('topk_increment gives the bytes TopK.add gives on the summary read back, filling and full', async () => {
    const next = zipf(rng(17), 400, 0.9);
    const r = rng(18);
    const full = TopK.create({ k: 3 });
    for (let i = 0; i < 3000; i++) full.add(`v${next()}`);
    const partial = TopK.create({ k: 5 });
    for (let i = 0; i < 300; i++) partial.add(`v${Math.floor(r() * 40)}`);
    const mixed = TopK.create({ k: 4 });
    for (const [v, w] of [[7, 5], [true, 4], ['x', 5], [1.5, 2], ['7', 1]] as const) mixed.add(v, w);
    for (const start of [full, partial, mixed, TopK.create({ k: 2 })]) {
      let bytes = start.serialize();
      for (let step = 0; step < 40; step++) {
        const value = r() < 0.5 ? `v${next()}` : `fresh${step}`;
        const weight = step % 7 === 0 ? 0 : step % 3 === 0 ? 1 + Math.floor(r() * 5) : 1;
        const [row] = await rows<{ s: Uint8Array }>('SELECT topk_increment($1, $2::text, $3) AS s', [bytes, value, weight]);
        const js = TopK.deserialize(bytes).add(value, weight);
        expect(hex(row.s)).toBe(hex(js.serialize()));
        bytes = row.s;
      }
    }
    const [ints] = await rows<{ a: Uint8Array; b: Uint8Array }>('SELECT topk_increment($1, 7) AS a, topk_increment($1, 7, 1) AS b', [partial.serialize()]);
    expect(hex(ints.a)).toBe(hex(TopK.deserialize(partial.serialize()).add('7').serialize()));
    expect(hex(ints.a)).toBe(hex(ints.b));
  });

  it('dist_add gives the bytes TDigest.add / addWeighted give, and sk_f64_hex encodes doubles exactly', async () => {
    // (-0 as a parameter arrives as 0: its literal is checked below.)
    const doubles = [0, 1, -1.5, 0.1, 1e-310, -5e-324, 1.7976931348623157e308, Math.PI, 123456.789, 2 ** -1022, 2 ** -1023, Infinity, -Infinity, 3e-300, 7.5e250];
    const got = await rows<{ h: string }>('SELECT sluice.sk_f64_hex(v) AS h FROM unnest($1::float8[]) WITH ORDINALITY AS u(v, i) ORDER BY i', [doubles]);
    doubles.forEach((v, i) => {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v);
      expect([v, got[i].h]).toEqual([v, b.toString('hex')]);
    });
    expect((await rows<{ h: string }>("SELECT sluice.sk_f64_hex('-0'::float8) AS h"))[0].h).toBe('8000000000000000');
    const r = rng(19);
    const digests = [TDigest.create(), TDigest.create().add(5), TDigest.create(), TDigest.create({ compression: 50 }), TDigest.create()];
    for (let i = 0; i < 20; i++) digests[2].add(Math.floor(r() * 10));
    for (let i = 0; i < 50_000; i++) digests[3].add(Math.exp(r() * 10));
    for (let i = 0; i < 20_000; i++) digests[4].add((r() - 0.5) * 1000);
    for (const d of digests) {
      let bytes = d.serialize();
      for (let step = 0; step < 25; step++) {
        const x = step === 3 ? -1e6 : step === 4 ? 1e6 : step === 5 ? 5 : step % 2 === 0 ? Math.floor(r() * 10) : (r() - 0.5) * 2000;
        const w = step % 4 === 1 ? 1 + Math.floor(r() * 20) : step % 4 === 3 ? 2.5 : 1;
        const [row] = await rows<{ s: Uint8Array }>('SELECT dist_add($1, $2, $3) AS s', [bytes, x, w]);
        const js = TDigest.deserialize(bytes);
        if (w === 1) js.add(x);
        else js.addWeighted(x, w);
        expect(hex(row.s)).toBe(hex(js.serialize()));
        bytes = row.s;
      }
      const [same] = await rows<{ nan: Uint8Array; two: Uint8Array; def: Uint8Array }>("SELECT dist_add($1, 'NaN') AS nan, dist_add($1, 2) AS two, dist_add($1, 2, 1) AS def", [bytes]);
      expect(hex(same.nan)).toBe(hex(bytes));
      expect(hex(same.two)).toBe(hex(same.def));
    }
    await expect(db.query('SELECT dist_add($1, 1, 0)', [digests[1].serialize()])).rejects.toThrow(/weight must be positive/);
  });

  it('sluice.murmur3_h1 is h1 of murmur3x64, and hll_add gives the bytes HyperLogLog.add gives, sparse, turning dense and dense', async () => {
    const chars = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN';
    const texts = ['', ...Array.from({ length: 48 }, (_, i) => chars.slice(0, i + 1)), 'héllo ☃ 𝄞', 'ÿ'.repeat(33), '-12345'];
    const got = await rows<{ h: string }>("SELECT lpad(to_hex(sluice.murmur3_h1(convert_to(t, 'UTF8'))), 16, '0') AS h FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i", [texts]);
    texts.forEach((t, i) => {
      const b = Buffer.from(t, 'utf8');
      const h = murmur3x64(b, b.length, 0, new Uint32Array(4));
      expect([t, got[i].h]).toEqual([t, h[0].toString(16).padStart(8, '0') + h[1].toString(16).padStart(8, '0')]);
    });
    for (const [p, count, adds] of [[14, 0, 6], [10, 120, 20], [12, 30_000, 4]] as const) {
      const h = HyperLogLog.create({ p });
      for (let i = 0; i < count; i++) h.add(`u${i}`);
      let bytes = h.serialize();
      for (let i = 0; i < adds; i++) {
        const v = i === 1 ? 'u0' : `new${i}`;
        const [row] = await rows<{ s: Uint8Array }>('SELECT hll_add($1, $2::text) AS s', [bytes, v]);
        h.add(v);
        expect(hex(row.s)).toBe(hex(h.serialize()));
        bytes = row.s;
      }
      const [typed] = await rows<{ i: Uint8Array; n: Uint8Array; z: Uint8Array }>('SELECT hll_add($1, 42) AS i, hll_add($1, 2.50::numeric) AS n, hll_add($1, NULL::int) AS z', [bytes]);
      expect(hex(typed.i)).toBe(hex(h.clone().add('42').serialize()));
      expect(hex(typed.n)).toBe(hex(h.clone().add('2.5').serialize()));
      expect(hex(typed.z)).toBe(hex(bytes));
    }
  });

  it('topk_merge_agg, tdigest_merge_agg and bucket_merge_agg give the bytes TopK, TDigest and BucketAgg merges give (combine() and windows)', async () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const r = rng(17);
    const next = zipf(r, 500, 1.05);
    for (const parts of [2, 3, 5]) {
      const tops = Array.from({ length: parts }, () => TopK.create({ k: 5 }));
      const digests = Array.from({ length: parts }, () => TDigest.create({ compression: 50 }));
      const buckets = Array.from({ length: parts }, () => BucketAgg.create());
      const timed = Array.from({ length: parts }, () => BucketAgg.create());
      for (let p = 0; p < parts; p++) {
        for (let i = 0; i < 400 * (p + 1); i++) {
          tops[p].add(`v${next()}`, 1 + Math.floor(r() * 3));
          digests[p].add(r() * 1000 - (p * 100));
          const user = String(Math.floor(r() * 200));
          buckets[p].add(user, Math.floor(r() * 8) - 3);
          timed[p].add(user, Math.floor(r() * 8) - 3, Math.floor(r() * 50));
        }
      }
      for (const [states, agg, merge] of [
        [tops, 'sluice.topk_merge_agg', (a: TopK, b: TopK) => a.merge(b)],
        [digests, 'sluice.tdigest_merge_agg', (a: TDigest, b: TDigest) => a.merge(b)],
        [buckets, 'sluice.bucket_merge_agg', (a: BucketAgg, b: BucketAgg) => a.merge(b)],
        [timed, 'sluice.bucket_merge_agg', (a: BucketAgg, b: BucketAgg) => a.merge(b)],
      ] as const) {
        type State = { serialize(): Uint8Array; clone(): State };
        const list = states as unknown as State[];
        const js = list.slice(1).reduce((acc, s) => ((merge as (a: State, b: State) => unknown)(acc, s), acc), list[0].clone());
        const [sql] = await rows<{ m: Uint8Array }>(`SELECT ${agg}(s ORDER BY n) AS m FROM unnest($1::bytea[]) WITH ORDINALITY AS u(s, n)`, [list.map((s) => s.serialize())]);
        expect([agg, parts, hex(sql.m)]).toEqual([agg, parts, hex(js.serialize())]);
      }
    }
  });
});

/**
 * The sketch aggregates over rows the store aggregates: the same bytes as the
 * engine's sketch given the values as a continuous view hands them over
 * (PostgreSQL's text of each value), through the folds of long inputs too.
 */
describe('sketch aggregates over rows', () => {
  const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('hex'));
  /** Awkward texts: quotes, backslashes, array-literal syntax, colons, empty, NULL-looking, non-ASCII. */
  const awkward = ['a"b', 'back\\slash', '{braces},commas', '', 'NULL', 'héllo ☃ 𝄞', ' spaced ', '1:2:3', '\\"', 'tab\there'];
  const texts = (n: number, mod: number) => Array.from({ length: n }, (_, i) => (i % 10 === 0 ? awkward[(i / 10) % awkward.length] : `v${(i * 7919) % mod}`));
  /** The aggregate over the texts in their order, NULLs mixed in every 7th row. */
  async function over(call: string, values: readonly string[]): Promise<Uint8Array | null> {
    const withNulls = values.flatMap((v, i) => (i % 7 === 3 ? [null, v] : [v]));
    const [row] = await rows<{ s: Uint8Array | null }>(`SELECT ${call} AS s FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i)`, [withNulls]);
    return row.s;
  }

  it('hll_agg gives the bytes HyperLogLog gives, sparse and dense, default and explicit p, whatever the order and types', async () => {
    for (const [n, mod, p] of [[1, 1, undefined], [60, 1000, undefined], [3000, 1_000_000, undefined], [40_000, 7000, undefined], [300, 1000, 10], [5000, 3000, 6]] as const) {
      const values = texts(n, mod);
      const want = HyperLogLog.create({ p });
      for (const v of values) want.add(v);
      const got = await over(p === undefined ? 'hll_agg(x ORDER BY i DESC)' : `hll_agg(x, ${p})`, values);
      expect([n, p, hex(got)]).toEqual([n, p, hex(want.serialize())]);
      expect(want.isSparse).toBe(n < 3000 && !(n === 300 && p === 10));
    }
    // Non-text values hash as their text, numerics without trailing zeros, as views hand them to the engine.
    const [typed] = await rows<{ i: Uint8Array; n: Uint8Array; b: Uint8Array }>(
      "SELECT hll_agg(g) AS i, hll_agg((g / 4.0)::numeric(10, 3)) AS n, hll_agg(g % 2 = 0) AS b FROM generate_series(1, 500) AS g",
    );
    const ints = HyperLogLog.create();
    const nums = HyperLogLog.create();
    for (let g = 1; g <= 500; g++) {
      ints.add(String(g));
      nums.add(normalizeNumericText((g / 4).toFixed(3)));
    }
    expect(hex(typed.i)).toBe(hex(ints.serialize()));
    expect(hex(typed.n)).toBe(hex(nums.serialize()));
    expect(hex(typed.b)).toBe(hex(HyperLogLog.create().add('false').add('true').serialize()));
    await expect(db.query('SELECT hll_agg(g, 3) FROM generate_series(1, 5) AS g')).rejects.toThrow(/p must be an integer between 4 and 18/);
  });

  it('freq_agg gives the bytes CountMinSketch gives, sparse and dense, default and explicit eps and p', async () => {
    for (const [n, mod, args] of [[1, 1, ''], [200, 100, ''], [3000, 1_000_000, ''], [40_000, 5000, ''], [2000, 300, ', 0.01'], [2000, 300, ', 0.05, 0.9']] as const) {
      const values = texts(n, mod);
      const [eps, p] = args ? args.slice(2).split(', ').map(Number) : [];
      const want = CountMinSketch.create({ eps, p });
      for (const v of values) want.add(v);
      expect([n, args, hex(await over(`freq_agg(x${args})`, values))]).toEqual([n, args, hex(want.serialize())]);
    }
    const [read] = await rows<{ f: string; t: string }>("SELECT freq(s, 'v7'::text)::text AS f, freq_total(s)::text AS t FROM (SELECT freq_agg(x) AS s FROM unnest($1::text[]) AS x) AS a", [
      ['v7', 'v7', 'v8', 'v7'],
    ]);
    expect(read).toEqual({ f: '3', t: '4' });
    await expect(db.query('SELECT freq_agg(g, 1.5) FROM generate_series(1, 5) AS g')).rejects.toThrow(/eps must be between 0 and 1/);
    await expect(db.query('SELECT freq_agg(g, 0.01, 0) FROM generate_series(1, 5) AS g')).rejects.toThrow(/p must be between 0 and 1/);
  });

  it('bloom_agg gives the bytes BloomFilter gives, sparse and dense, default and explicit p and n', async () => {
    for (const [n, mod, args] of [[1, 1, ''], [100, 1000, ''], [3000, 1_000_000, ''], [40_000, 9000, ''], [500, 1000, ', 0.1'], [2000, 5000, ', 0.1, 1000']] as const) {
      const values = texts(n, mod);
      const [p, count] = args ? args.slice(2).split(', ').map(Number) : [];
      const want = BloomFilter.create({ p, n: count });
      for (const v of values) want.add(v);
      expect([n, args, hex(await over(`bloom_agg(x${args})`, values))]).toEqual([n, args, hex(want.serialize())]);
    }
    const [row] = await rows<{ yes: boolean; no: boolean }>('SELECT bloom_contains(s, 50) AS yes, bloom_contains(s, 500) AS no FROM (SELECT bloom_agg(g) AS s FROM generate_series(1, 100) AS g) AS b');
    expect(row).toEqual({ yes: true, no: false });
    await expect(db.query('SELECT bloom_agg(g, 0.1, 0) FROM generate_series(1, 5) AS g')).rejects.toThrow(/n must be a positive integer/);
  });

  it('dist_agg gives the bytes TDigest gives for the same values in the same order, across its buffer flushes', async () => {
    const r = rng(23);
    for (const [n, compression] of [[1, undefined], [2, undefined], [399, undefined], [400, undefined], [401, undefined], [5000, undefined], [3000, 50], [700, 10]] as const) {
      const xs = Array.from({ length: n }, (_, i) => (i % 11 === 5 ? Math.floor(r() * 20) : (r() - 0.3) * 1e4));
      const want = TDigest.create({ compression });
      for (const x of xs) want.add(x);
      // NaN and ±Infinity are not kept, as TDigest ignores them.
      const fed = xs.flatMap((x, i) => (i % 97 === 1 ? [x, 'NaN', null, 'Infinity'] : [x]));
      const call = compression === undefined ? 'dist_agg(x ORDER BY i)' : `dist_agg(x, ${compression} ORDER BY i)`;
      const [row] = await rows<{ s: Uint8Array }>(`SELECT ${call} AS s FROM unnest($1::float8[]) WITH ORDINALITY AS u(x, i)`, [fed]);
      expect([n, compression, hex(row.s)]).toEqual([n, compression, hex(want.serialize())]);
    }
    const [q] = await rows<{ m: number }>('SELECT dist_quantile(dist_agg(g), 0.5) AS m FROM generate_series(1, 1001) AS g');
    expect(q.m).toBeCloseTo(501, 0);
    await expect(db.query('SELECT dist_agg(g, 5) FROM generate_series(1, 5) AS g')).rejects.toThrow(/compression must be between 10 and 10000/);
  });

  it('topk_agg counts exactly: the bytes of a TopK that stayed exact, error 0 and the right total past its capacity', async () => {
    const next = zipf(rng(29), 20_000, 1.05);
    for (const [n, k, weighted] of [[1, 3, false], [90, 3, false], [60, 10, true], [50_000, 5, false], [20_000, 20, true]] as const) {
      const values = Array.from({ length: n }, (_, i) => (i % 50 === 0 ? awkward[(i / 50) % awkward.length] : `v${next()}`));
      const weights = values.map((_, i) => (i % 13 === 0 ? 0 : 1 + (i % 4)));
      const exact = new Map<string, number>();
      values.forEach((v, i) => exact.set(v, (exact.get(v) ?? 0) + (weighted ? weights[i] : 1)));
      const [row] = await rows<{ s: Uint8Array }>(
        `SELECT ${weighted ? `topk_agg(x, ${k}, w)` : `topk_agg(x, ${k})`} AS s FROM unnest($1::text[], $2::bigint[]) AS u(x, w)`,
        [values, weights],
      );
      const got = TopK.deserialize(row.s);
      expect(got.totalCount()).toBe([...exact.values()].reduce((a, b) => a + b, 0));
      const ranked = [...exact].filter(([, c]) => c > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      expect(got.top()).toEqual(ranked.slice(0, k).map(([value, frequency]) => ({ value, frequency })));
      if (exact.size <= got.capacity) {
        // Fewer distinct values than counters: the engine's summary is exact too, byte for byte.
        const engine = TopK.create({ k });
        values.forEach((v, i) => engine.add(v, weighted ? weights[i] : 1));
        expect(hex(row.s)).toBe(hex(engine.serialize()));
      }
      const [sql] = await rows<{ vs: string[]; fs: string[] }>('SELECT topk_values($1) AS vs, topk_freqs($1)::text[] AS fs', [row.s]);
      expect(sql.vs).toEqual(got.topValues());
      expect(sql.fs.map(Number)).toEqual(got.topFrequencies());
    }
    await expect(db.query('SELECT topk_agg(g, 0) FROM generate_series(1, 5) AS g')).rejects.toThrow(/k must be an integer between 1 and 100000/);
    await expect(db.query('SELECT topk_agg(g, 3, -1) FROM generate_series(1, 5) AS g')).rejects.toThrow(/weight must be a non-negative integer/);
  });

  it('bucket_agg gives the bytes BucketAgg gives for the same rows in the same order, with and without timestamps', async () => {
    const r = rng(31);
    const base = Date.parse('2024-03-01T00:00:00Z') / 1000;
    for (const [n, mod, timed] of [[1, 1, false], [50, 20, false], [30_000, 4000, false], [3000, 500, true], [30_000, 6000, true]] as const) {
      const values = texts(n, mod);
      const ids = values.map(() => Math.floor(r() * 9) - 4);
      const ts = values.map(() => (r() < 0.1 ? null : Math.floor(r() * 400) / 4));
      const want = BucketAgg.create();
      values.forEach((v, i) => want.add(v, ids[i], timed && ts[i] !== null ? base + (ts[i] as number) : undefined));
      const call = timed ? `bucket_agg(x, b::int2, timestamptz '2024-03-01 00:00:00+00' + t * interval '1 second' ORDER BY i)` : 'bucket_agg(x, b::int2 ORDER BY i)';
      const [row] = await rows<{ s: Uint8Array }>(`SELECT ${call} AS s FROM unnest($1::text[], $2::int[], $3::float8[]) WITH ORDINALITY AS u(x, b, t, i)`, [values, ids, ts]);
      expect([n, timed, hex(row.s)]).toEqual([n, timed, hex(want.serialize())]);
    }
    // A row without a bucket id adds nothing, as in a continuous view.
    const [row] = await rows<{ c: number[] }>("SELECT bucket_cardinalities(bucket_agg(x, b)) AS c FROM (VALUES ('a', 1::int2), ('b', NULL), ('c', 1::int2), ('a', 2::int2)) AS t(x, b)");
    expect(row.c).toEqual([1, 1]);
  });

  it('over no rows each aggregate is NULL; over rows of NULL values the empty sketch', async () => {
    for (const [call, empty] of [
      ['hll_agg(x)', HyperLogLog.create()],
      ['freq_agg(x)', CountMinSketch.create()],
      ['bloom_agg(x)', BloomFilter.create()],
      ['topk_agg(x, 4)', TopK.create({ k: 4 })],
      ['bucket_agg(x, 1::int2)', BucketAgg.create()],
      ['dist_agg(x::float8)', TDigest.create()],
    ] as const) {
      const [none] = await rows<{ s: Uint8Array | null }>(`SELECT ${call} AS s FROM (SELECT 1 AS x) AS t WHERE false`);
      expect([call, none.s]).toEqual([call, null]);
      const [nulls] = await rows<{ s: Uint8Array }>(`SELECT ${call} AS s FROM (SELECT NULL::int AS x FROM generate_series(1, 3)) AS t`);
      expect([call, hex(nulls.s)]).toEqual([call, hex(empty.serialize())]);
    }
  });

  it('partial states combine (parallel aggregation) into the state of all the rows', async () => {
    // Each aggregate's transition and combine functions, as PostgreSQL's partial aggregation calls them.
    const calls: [string, string, string][] = [
      ['hll_agg', 'x', ''],
      ['freq_agg', 'x', ''],
      ['bloom_agg', 'x', ''],
      ['topk_agg', 'x, 5', ''],
      ['bucket_agg', 'x, (i % 3)::int2', ''],
      ['dist_agg', 'i::float8', ''],
    ];
    for (const [name, args] of calls) {
      await db.exec(`CREATE AGGREGATE pg_temp.${name}_partial(${name === 'dist_agg' ? 'double precision' : name === 'topk_agg' ? 'anyelement, integer' : name === 'bucket_agg' ? 'anyelement, smallint' : 'anyelement'})
        (sfunc = sluice.${name}_sfunc, stype = bytea)`);
      const values = texts(30_000, 4000);
      const [row] = await rows<{ all: Uint8Array; combined: Uint8Array }>(
        `SELECT (SELECT ${name}(${args} ORDER BY i) FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i)) AS all,
                sluice.${name}_final(sluice.${name}_combine(
                  (SELECT pg_temp.${name}_partial(${args} ORDER BY i) FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) WHERE i <= 11000),
                  (SELECT pg_temp.${name}_partial(${args} ORDER BY i) FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) WHERE i > 11000))) AS combined`,
        [values],
      );
      if (name === 'dist_agg') {
        // Merging two digests is not compressing all the values in one pass: the same total and extremes.
        const [all, combined] = [TDigest.deserialize(row.all), TDigest.deserialize(row.combined)];
        expect([combined.count, combined.min, combined.max]).toEqual([all.count, all.min, all.max]);
      } else {
        expect([name, hex(row.combined)]).toEqual([name, hex(row.all)]);
      }
    }
  });

  it('keyed_max/keyed_min give the value of the largest/smallest key, as KeyedExtreme does, in the value type', async () => {
    const r = rng(37);
    const keys = Array.from({ length: 5000 }, () => (r() < 0.05 ? null : Math.floor(r() * 300)));
    const values = keys.map(() => (r() < 0.2 ? null : `w${Math.floor(r() * 50)}`));
    const max = KeyedExtreme.create({ mode: 'max' });
    const min = KeyedExtreme.create({ mode: 'min' });
    keys.forEach((k, i) => {
      max.add(k, values[i]);
      min.add(k, values[i]);
    });
    const [row] = await rows<{ mx: string; mn: string }>('SELECT keyed_max(k, v) AS mx, keyed_min(k, v) AS mn FROM unnest($1::int[], $2::text[]) AS u(k, v)', [keys, values]);
    expect(row).toEqual({ mx: max.result(), mn: min.result() });
    const typed = await db.query<{ mx: number; mn: number }>(
      "SELECT keyed_max(ts, x) AS mx, keyed_min(ts, x) AS mn FROM (VALUES (timestamptz '2024-01-01', 10.5::float8), ('2024-06-01', 2), ('2023-01-01', 7), (NULL, 99)) AS t(ts, x)",
    );
    expect(typed.rows[0]).toEqual({ mx: 2, mn: 7 });
    expect(typed.fields.map((f) => f.dataTypeID)).toEqual([701, 701]);
    // Equal keys: a value beats NULL, then the larger (smaller) value; no keys: NULL.
    const [ties] = await rows<{ mx: string; mn: string; none: string | null }>(
      "SELECT keyed_max(k, v) AS mx, keyed_min(k, v) AS mn, (SELECT keyed_max(k, v) FROM (VALUES (NULL::int, 'x')) AS n(k, v)) AS none FROM (VALUES (3, NULL), (3, 'b'), (1, 'a'), (3, 'a'), (1, NULL), (1, 'c')) AS t(k, v)",
    );
    expect(ties).toEqual({ mx: 'b', mn: 'a', none: null });
  });
});
