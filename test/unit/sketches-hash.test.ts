/**
 * The hash under every sketch: MurmurHash3 x64 128 must match the reference
 * (SMHasher's verification value), and the canonical bytes of values must
 * agree with PostgreSQL's text forms.
 */
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, SketchKind } from '../../engine/sketches/codec.ts';
import { canonicalBytes, hashValue, murmur3x64, normalizeNumericText, pgFloatText } from '../../engine/sketches/index.ts';
import { rng } from '../support/random.ts';

function hashBytes(out: Uint32Array): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, out[1], true);
  v.setUint32(4, out[0], true);
  v.setUint32(8, out[3], true);
  v.setUint32(12, out[2], true);
  return b;
}

/** A plain BigInt transcription of MurmurHash3_x64_128, to cross-check the 32-bit version. */
function referenceMurmur(key: Uint8Array, seed: number): [bigint, bigint] {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
  const fmix = (k: bigint) => {
    k ^= k >> 33n;
    k = (k * 0xff51afd7ed558ccdn) & M;
    k ^= k >> 33n;
    k = (k * 0xc4ceb9fe1a85ec53n) & M;
    k ^= k >> 33n;
    return k;
  };
  const c1 = 0x87c37b91114253d5n;
  const c2 = 0x4cf5ad432745937fn;
  let h1 = BigInt(seed);
  let h2 = BigInt(seed);
  const blocks = Math.floor(key.length / 16);
  const word = (o: number, n: number) => {
    let x = 0n;
    for (let i = n - 1; i >= 0; i--) x = (x << 8n) | BigInt(key[o + i]);
    return x;
  };
  for (let i = 0; i < blocks; i++) {
    let k1 = word(i * 16, 8);
    let k2 = word(i * 16 + 8, 8);
    k1 = (rotl((k1 * c1) & M, 31n) * c2) & M;
    h1 ^= k1;
    h1 = (((rotl(h1, 27n) + h2) & M) * 5n + 0x52dce729n) & M;
    k2 = (rotl((k2 * c2) & M, 33n) * c1) & M;
    h2 ^= k2;
    h2 = (((rotl(h2, 31n) + h1) & M) * 5n + 0x38495ab5n) & M;
  }
  const rest = key.length & 15;
  const tail = blocks * 16;
  if (rest > 8) {
    const k2 = (rotl((word(tail + 8, rest - 8) * c2) & M, 33n) * c1) & M;
    h2 ^= k2;
  }
  if (rest > 0) {
    const k1 = (rotl((word(tail, Math.min(rest, 8)) * c1) & M, 31n) * c2) & M;
    h1 ^= k1;
  }
  h1 ^= BigInt(key.length);
  h2 ^= BigInt(key.length);
  h1 = (h1 + h2) & M;
  h2 = (h2 + h1) & M;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 = (h1 + h2) & M;
  h2 = (h2 + h1) & M;
  return [h1, h2];
}

describe('MurmurHash3 x64 128', () => {
  it("matches SMHasher's verification value 0x6384BA69", () => {
    const key = new Uint8Array(256);
    const hashes = new Uint8Array(16 * 256);
    const out = new Uint32Array(4);
    for (let i = 0; i < 256; i++) {
      key[i] = i;
      hashes.set(hashBytes(murmur3x64(key, i, 256 - i, out)), i * 16);
    }
    const final = hashBytes(murmur3x64(hashes, hashes.length, 0, out));
    const verification = (final[0] | (final[1] << 8) | (final[2] << 16) | (final[3] << 24)) >>> 0;
    expect(verification.toString(16)).toBe('6384ba69');
  });

  it('matches a BigInt transcription on random keys and seeds', () => {
    const r = rng(7);
    const out = new Uint32Array(4);
    for (let n = 0; n < 300; n++) {
      const key = new Uint8Array(Math.floor(r() * 70));
      for (let i = 0; i < key.length; i++) key[i] = Math.floor(r() * 256);
      const seed = Math.floor(r() * 2 ** 32);
      murmur3x64(key, key.length, seed, out);
      const [h1, h2] = referenceMurmur(key, seed);
      expect([out[0], out[1], out[2], out[3]]).toEqual([
        Number(h1 >> 32n),
        Number(h1 & 0xffffffffn),
        Number(h2 >> 32n),
        Number(h2 & 0xffffffffn),
      ]);
    }
  });

  it('hashes "hello" to the published value', () => {
    const out = murmur3x64(new TextEncoder().encode('hello'), 5, 0, new Uint32Array(4));
    expect(Buffer.from(hashBytes(out)).toString('hex')).toBe('029bbd41b3a7d8cb191dae486a901e5b');
  });
});

describe('canonical bytes', () => {
  const text = (v: Parameters<typeof canonicalBytes>[0]) => new TextDecoder().decode(canonicalBytes(v));

  it('gives one SQL value one byte form whatever JS type holds it', () => {
    expect(text(5)).toBe('5');
    expect(text(5n)).toBe('5');
    expect(text(-0)).toBe('0');
    expect(text(0)).toBe('0');
    expect(text(-2147483648)).toBe('-2147483648');
    expect(text(2 ** 53 + 2)).toBe((2n ** 53n + 2n).toString());
    expect(text(9007199254740993n)).toBe('9007199254740993');
    expect(text(1e15)).toBe('1000000000000000');
    expect(text(-9223372036854775808)).toBe('-9223372036854775808');
    expect(text(9223372036854775808)).toBe('9.223372036854776e+18');
    expect(text(true)).toBe('t');
    expect(text(false)).toBe('f');
    expect(text(NaN)).toBe('NaN');
    expect(text(-Infinity)).toBe('-Infinity');
    expect(text('héllo ☃ 😀')).toBe('héllo ☃ 😀');
    expect(canonicalBytes('é')).toEqual(new Uint8Array([0xc3, 0xa9]));
    const h = (v: Parameters<typeof hashValue>[0]) => [...hashValue(v)];
    expect(h(12345)).toEqual(h(12345n));
    expect(h(12345)).toEqual(h('12345'));
    expect(h(-0)).toEqual(h(0));
    expect(h(1.5)).not.toEqual(h(15));
  });

  it('normalizes numeric text so equal numerics hash alike', () => {
    const cases: [string, string][] = [
      ['5.00', '5'],
      ['5', '5'],
      ['-0.000', '0'],
      ['-0', '0'],
      ['1.2300', '1.23'],
      ['100', '100'],
      ['-100.10', '-100.1'],
      ['0.001', '0.001'],
      ['NaN', 'NaN'],
      ['Infinity', 'Infinity'],
    ];
    for (const [input, want] of cases) expect(normalizeNumericText(input)).toBe(want);
    expect([...hashValue(normalizeNumericText('42.000'))]).toEqual([...hashValue(42)]);
  });

  describe("non-integral numbers use PostgreSQL's float8 text", () => {
    let db: PGlite;
    beforeAll(async () => {
      db = await PGlite.create();
    });
    afterAll(async () => {
      await db.close();
    });

    it('agrees with float8out on random and edge doubles', async () => {
      const r = rng(11);
      const values: number[] = [0.1, 1e-5, 1.5e-7, 1e-4, 0.00012, 123456789012345.6, 1e15 + 0.5, 1e100, -2.5e-300, 5e-324, 1.7976931348623157e308, -0.5];
      for (let i = 0; i < 500; i++) {
        const mantissa = r() * 10 - 5;
        const exponent = Math.floor(r() * 80) - 40;
        values.push(mantissa * Math.pow(10, exponent));
      }
      const nonIntegral = values.filter((v) => !Number.isInteger(v) || Math.abs(v) >= 2 ** 63);
      const result = await db.query<{ t: string }>('select x::float8::text as t from unnest($1::text[]) with ordinality u(x, i) order by i', [
        nonIntegral.map((v) => String(v)),
      ]);
      expect(nonIntegral.map(pgFloatText)).toEqual(result.rows.map((row) => row.t));
    });
  });
});

describe('state codec', () => {
  it('round-trips varints and tagged values', () => {
    const values = [null, true, false, 0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 1.5, -0, NaN, Infinity, 12n, -(2n ** 70n), '', 'héllo 😀'];
    const w = new ByteWriter(4).header(SketchKind.set);
    for (const n of [0, 1, 127, 128, 300, 2 ** 32, 2 ** 53 - 1]) w.varuint(n);
    for (const v of values) w.value(v);
    const r = new ByteReader(w.finish(), 'set');
    expect(r.header(SketchKind.set)).toBe(1);
    for (const n of [0, 1, 127, 128, 300, 2 ** 32, 2 ** 53 - 1]) expect(r.varuint()).toBe(n);
    for (const v of values) expect(Object.is(r.value(), v)).toBe(true);
    r.end();
  });
});
