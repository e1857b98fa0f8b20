/**
 * bucket_agg(x, bucket_id int2 [, ts]): which bucket each distinct value is
 * in, a value being in the bucket it was last added to: the one with the
 * latest timestamp when timestamps are given, else the latest added (and in
 * merge(other), other counts as later). bucket_ids / bucket_cardinalities /
 * bucket_cardinality read it.
 *
 * Values are tracked by their 64-bit hash (first half of MurmurHash3 x64 128
 * over the canonical bytes) in an open-addressing table: 18 bytes per slot,
 * so per-bucket counts are exact up to 64-bit hash collisions
 * (~n^2 / 2^65) and a value can move between buckets, which per-bucket
 * HyperLogLogs could not express.
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, invalidParameter, SketchKind } from './codec.ts';
import { toNumber } from './common.ts';
import { hashValue } from './hash.ts';

/** Timestamp of an entry added without one: any timestamp is later. */
const NO_TS = -Infinity;

export class BucketAgg {
  private hi = new Uint32Array(16);
  private lo = new Uint32Array(16);
  private bucket = new Int16Array(16);
  private ts = new Float64Array(16);
  /** used[slot] = 1 when the slot holds an entry. */
  private used = new Uint8Array(16);
  private count = 0;

  static create(): BucketAgg {
    return new BucketAgg();
  }

  /** Puts the value in bucket `bucketId` (an int2) unless it is already in one with a later timestamp. */
  add(value: Value, bucketId: number, ts?: Value): this {
    if (value === null) return this;
    if (!Number.isInteger(bucketId) || bucketId < -32768 || bucketId > 32767) {
      throw invalidParameter('bucket id must be a smallint');
    }
    let t = NO_TS;
    if (ts !== undefined && ts !== null) {
      t = toNumber(ts, 'bucket_agg timestamp');
      if (Number.isNaN(t)) throw invalidParameter('bucket_agg timestamp must not be NaN');
    }
    const h = hashValue(value);
    this.put(h[0], h[1], bucketId, t);
    return this;
  }

  private put(hi: number, lo: number, bucketId: number, t: number): void {
    const mask = this.used.length - 1;
    let slot = (lo ^ Math.imul(hi, 0x9e3779b1)) & mask;
    while (this.used[slot] === 1) {
      if (this.hi[slot] === hi && this.lo[slot] === lo) {
        const old = this.ts[slot];
        if (t === NO_TS || t > old || (t === old && bucketId > this.bucket[slot])) {
          this.bucket[slot] = bucketId;
          this.ts[slot] = t;
        }
        return;
      }
      slot = (slot + 1) & mask;
    }
    this.used[slot] = 1;
    this.hi[slot] = hi;
    this.lo[slot] = lo;
    this.bucket[slot] = bucketId;
    this.ts[slot] = t;
    this.count++;
    if (this.count * 2 > this.used.length) this.resize(this.used.length * 2);
  }

  private resize(capacity: number): void {
    const { hi, lo, bucket, ts, used } = this;
    this.hi = new Uint32Array(capacity);
    this.lo = new Uint32Array(capacity);
    this.bucket = new Int16Array(capacity);
    this.ts = new Float64Array(capacity);
    this.used = new Uint8Array(capacity);
    this.count = 0;
    for (let i = 0; i < used.length; i++) if (used[i] === 1) this.put(hi[i], lo[i], bucket[i], ts[i]);
  }

  /** Number of distinct values in all buckets. */
  cardinality(): number {
    return this.count;
  }

  private histogram(): Map<number, number> {
    const counts = new Map<number, number>();
    for (let i = 0; i < this.used.length; i++) {
      if (this.used[i] === 1) counts.set(this.bucket[i], (counts.get(this.bucket[i]) ?? 0) + 1);
    }
    return counts;
  }

  /** The ids of the buckets holding at least one value, ascending (bucket_ids). */
  ids(): number[] {
    return [...this.histogram().keys()].sort((a, b) => a - b);
  }

  /** The number of distinct values in each bucket of ids(), in the same order (bucket_cardinalities). */
  cardinalities(): number[] {
    const counts = this.histogram();
    return [...counts.keys()].sort((a, b) => a - b).map((id) => counts.get(id)!);
  }

  /** The number of distinct values in one bucket (bucket_cardinality). */
  bucketCardinality(bucketId: number): number {
    return this.histogram().get(bucketId) ?? 0;
  }

  /** Adds the entries of `other`, which count as later than this state's for entries without timestamps. */
  merge(other: BucketAgg): this {
    if (other === this) return this;
    for (let i = 0; i < other.used.length; i++) {
      if (other.used[i] === 1) this.put(other.hi[i], other.lo[i], other.bucket[i], other.ts[i]);
    }
    return this;
  }

  clone(): BucketAgg {
    return new BucketAgg().merge(this);
  }

  /**
   * Format version 2 (version 1 had little-endian fields and varint counts):
   * version, kind, timestamps flag (u8 0/1), count (u32be), then the entries
   * ascending by hash: hash high, hash low (u32be), bucket (u16be, two's
   * complement), timestamp (f64be, when the flag is set; -Infinity = none).
   */
  serialize(): Uint8Array {
    const slots: number[] = [];
    let withTs = false;
    for (let i = 0; i < this.used.length; i++) {
      if (this.used[i] === 1) {
        slots.push(i);
        if (this.ts[i] !== NO_TS) withTs = true;
      }
    }
    slots.sort((a, b) => this.hi[a] - this.hi[b] || this.lo[a] - this.lo[b]);
    const w = new ByteWriter(8 + slots.length * (withTs ? 18 : 10));
    w.header(SketchKind.bucket, 2).u8(withTs ? 1 : 0).u32be(slots.length);
    for (const i of slots) {
      w.u32be(this.hi[i]).u32be(this.lo[i]).u16be(this.bucket[i] & 0xffff);
      if (withTs) w.f64be(this.ts[i]);
    }
    return w.finish();
  }

  static deserialize(bytes: Uint8Array): BucketAgg {
    const r = new ByteReader(bytes, 'bucket_agg');
    const version = r.header(SketchKind.bucket, 2);
    const withTs = r.u8();
    if (withTs > 1) throw corrupt('bucket_agg');
    const n = version === 1 ? r.count(bytes.length) : r.u32be();
    if (n > bytes.length) throw corrupt('bucket_agg');
    const state = new BucketAgg();
    for (let i = 0; i < n; i++) {
      const hi = version === 1 ? r.u32() : r.u32be();
      const lo = version === 1 ? r.u32() : r.u32be();
      const bucketId = version === 1 ? r.i16() : (r.u16be() << 16) >> 16;
      const t = withTs === 1 ? (version === 1 ? r.f64() : r.f64be()) : NO_TS;
      if (Number.isNaN(t) || t === Infinity) throw corrupt('bucket_agg');
      state.put(hi, lo, bucketId, t);
    }
    if (state.count !== n) throw corrupt('bucket_agg');
    r.end();
    return state;
  }
}
