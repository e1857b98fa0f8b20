/**
 * Exact distinct sets: set_agg / set_cardinality (array_agg(DISTINCT x) in
 * continuous views) and exact_count_distinct. Every distinct value is kept,
 * so states grow with the number of distinct values.
 *
 * Values are told apart as SQL compares them: an int8 (bigint) and an
 * int4 (number) holding the same integer are one value, as are -0 and 0.
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, SketchKind } from './codec.ts';
import { compareValues, valueKey } from './common.ts';

export class ExactSet {
  private readonly members = new Map<unknown, Value>();

  static create(): ExactSet {
    return new ExactSet();
  }

  /** Adds a value; NULL is ignored. */
  add(value: Value): this {
    if (value === null) return this;
    const key = valueKey(value);
    if (!this.members.has(key)) this.members.set(key, value);
    return this;
  }

  has(value: Value): boolean {
    return value !== null && this.members.has(valueKey(value));
  }

  /** Number of distinct values (set_cardinality, exact_count_distinct). */
  cardinality(): number {
    return this.members.size;
  }

  /** The distinct values in ascending order, as array_agg(DISTINCT x) returns them (set_agg's array). */
  values(): Value[] {
    return [...this.members.values()].sort(compareValues);
  }

  merge(other: ExactSet): this {
    for (const [key, value] of other.members) if (!this.members.has(key)) this.members.set(key, value);
    return this;
  }

  clone(): ExactSet {
    return new ExactSet().merge(this);
  }

  /** Format: version, kind, count (varint), then the values ascending (tagged). */
  serialize(): Uint8Array {
    const w = new ByteWriter(8 + this.members.size * 8);
    w.header(SketchKind.set).varuint(this.members.size);
    for (const v of this.values()) w.value(v);
    return w.finish();
  }

  static deserialize(bytes: Uint8Array): ExactSet {
    const r = new ByteReader(bytes, 'set');
    r.header(SketchKind.set);
    const n = r.count(bytes.length);
    const set = new ExactSet();
    for (let i = 0; i < n; i++) {
      const v = r.value();
      if (v === null) throw corrupt('set');
      set.add(v);
    }
    if (set.cardinality() !== n) throw corrupt('set');
    r.end();
    return set;
  }
}
