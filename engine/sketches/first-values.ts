/**
 * first_values(n) WITHIN GROUP (ORDER BY x): the n first values in sort
 * order (the n smallest, or largest with `descending`), sorted, duplicates
 * kept. NULL inputs are ignored. Values sort as PostgreSQL orders them (see
 * compareValues).
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, invalidParameter, SketchKind } from './codec.ts';
import { compareValues, intParam } from './common.ts';

export const FIRST_VALUES_MAX_N = 100000;

export interface FirstValuesParams {
  n: number;
  descending?: boolean;
}

export class FirstValues {
  readonly n: number;
  readonly descending: boolean;
  private items: Value[] = [];

  private constructor(n: number, descending: boolean) {
    this.n = n;
    this.descending = descending;
  }

  static create(params: FirstValuesParams): FirstValues {
    return new FirstValues(intParam(params.n, 1, 'n', 1, FIRST_VALUES_MAX_N), params.descending ?? false);
  }

  private compare(a: Value, b: Value): number {
    return this.descending ? compareValues(b, a) : compareValues(a, b);
  }

  add(value: Value): this {
    if (value === null) return this;
    const items = this.items;
    if (items.length === this.n && this.compare(value, items[items.length - 1]) >= 0) return this;
    // First position whose item sorts after the value.
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compare(items[mid], value) <= 0) lo = mid + 1;
      else hi = mid;
    }
    items.splice(lo, 0, value);
    if (items.length > this.n) items.pop();
    return this;
  }

  /** The kept values in sort order. */
  values(): Value[] {
    return this.items.slice();
  }

  merge(other: FirstValues): this {
    if (other.n !== this.n || other.descending !== this.descending) {
      throw invalidParameter('first_values states of different n or order do not merge');
    }
    const a = this.items;
    const b = other.items;
    const out: Value[] = [];
    let i = 0;
    let j = 0;
    while (out.length < this.n && (i < a.length || j < b.length)) {
      if (j >= b.length || (i < a.length && this.compare(a[i], b[j]) <= 0)) out.push(a[i++]);
      else out.push(b[j++]);
    }
    this.items = out;
    return this;
  }

  clone(): FirstValues {
    const copy = new FirstValues(this.n, this.descending);
    copy.items = this.items.slice();
    return copy;
  }

  /** Format: version, kind, n (varint), descending (0/1), count (varint), values in order (tagged). */
  serialize(): Uint8Array {
    const w = new ByteWriter(8 + this.items.length * 8);
    w.header(SketchKind.firstValues).varuint(this.n).u8(this.descending ? 1 : 0).varuint(this.items.length);
    for (const v of this.items) w.value(v);
    return w.finish();
  }

  static deserialize(bytes: Uint8Array): FirstValues {
    const r = new ByteReader(bytes, 'first_values');
    r.header(SketchKind.firstValues);
    const n = r.varuint();
    const descending = r.u8();
    if (n < 1 || n > FIRST_VALUES_MAX_N || descending > 1) throw corrupt('first_values');
    const state = new FirstValues(n, descending === 1);
    const count = r.count(n);
    for (let i = 0; i < count; i++) {
      const v = r.value();
      if (v === null || (i > 0 && state.compare(state.items[i - 1], v) > 0)) throw corrupt('first_values');
      state.items.push(v);
    }
    r.end();
    return state;
  }
}
