/**
 * keyed_max(key, value) / keyed_min(key, value): the value that came with
 * the largest (smallest) key. NULL keys are ignored; values may be NULL.
 * On equal keys a non-NULL value beats NULL, then the larger (for keyed_max)
 * or smaller (keyed_min) value is kept, so the result does not depend on
 * arrival or merge order.
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, invalidParameter, SketchKind } from './codec.ts';
import { compareValues } from './common.ts';

export type KeyedMode = 'max' | 'min';

export class KeyedExtreme {
  readonly mode: KeyedMode;
  private has = false;
  private key: Value = null;
  private value: Value = null;

  private constructor(mode: KeyedMode) {
    this.mode = mode;
  }

  static create(params: { mode: KeyedMode }): KeyedExtreme {
    return new KeyedExtreme(params.mode);
  }

  add(key: Value, value: Value): this {
    if (key === null) return this;
    if (!this.has) {
      this.has = true;
      this.key = key;
      this.value = value;
      return this;
    }
    const sign = this.mode === 'max' ? 1 : -1;
    const byKey = compareValues(key, this.key) * sign;
    if (byKey > 0 || (byKey === 0 && value !== null && (this.value === null || compareValues(value, this.value) * sign > 0))) {
      this.key = key;
      this.value = value;
    }
    return this;
  }

  /** The value of the extreme key; null when no row had a key. */
  result(): Value {
    return this.has ? this.value : null;
  }

  /** The extreme key itself; null when empty. */
  extremeKey(): Value {
    return this.has ? this.key : null;
  }

  merge(other: KeyedExtreme): this {
    if (other.mode !== this.mode) throw invalidParameter('keyed_max and keyed_min states do not merge');
    if (other.has) this.add(other.key, other.value);
    return this;
  }

  clone(): KeyedExtreme {
    return new KeyedExtreme(this.mode).merge(this);
  }

  /** Format: version, kind, mode (0 max, 1 min), has (0/1), then key and value (tagged). */
  serialize(): Uint8Array {
    const w = new ByteWriter(24);
    w.header(SketchKind.keyed).u8(this.mode === 'max' ? 0 : 1).u8(this.has ? 1 : 0);
    if (this.has) w.value(this.key).value(this.value);
    return w.finish();
  }

  static deserialize(bytes: Uint8Array): KeyedExtreme {
    const r = new ByteReader(bytes, 'keyed');
    r.header(SketchKind.keyed);
    const mode = r.u8();
    const has = r.u8();
    if (mode > 1 || has > 1) throw corrupt('keyed');
    const state = new KeyedExtreme(mode === 0 ? 'max' : 'min');
    if (has === 1) {
      const key = r.value();
      if (key === null) throw corrupt('keyed');
      state.add(key, r.value());
    }
    r.end();
    return state;
  }
}
