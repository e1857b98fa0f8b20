/**
 * Top-K by Space-Saving (Metwally et al.), PipelineDB's topk_agg / topk /
 * topk_values / topk_freqs / topk_increment.
 *
 * `capacity` counters (a multiple of k: 10k by default, at least 100) are
 * kept in a min-heap. A value already monitored gets its weight added; a new
 * value takes over the smallest counter, inheriting its count as error.
 * Every frequency reported is an upper bound, low by at most the error of its
 * counter, and every value whose true frequency exceeds total / capacity is
 * monitored. Counts are exact while fewer than `capacity` distinct values
 * have been seen.
 *
 * Merging sums counts, a value missing from a full summary counting as that
 * summary's smallest count (its upper bound there), and keeps the top
 * `capacity` counters (ties broken by value, so merge is commutative).
 */
import type { Value } from '../values/index.ts';
import { ByteReader, ByteWriter, corrupt, invalidParameter, SketchKind } from './codec.ts';
import { compareValues, intParam, toWeight, valueKey } from './common.ts';
import { pgFloatText } from './hash.ts';

export const TOPK_MAX_K = 100000;
const CAPACITY_FACTOR = 10;
const MIN_CAPACITY = 100;

export interface TopKParams {
  k: number;
  /** Counters kept; default max(10k, 100). */
  capacity?: number;
}

export interface TopKEntry {
  value: Value;
  frequency: number;
}

export class TopK {
  readonly k: number;
  readonly capacity: number;
  private readonly slots = new Map<unknown, number>();
  private keys: unknown[] = [];
  private values: Value[] = [];
  private counts: Float64Array;
  private errors: Float64Array;
  /** heap[i] = slot; a min-heap on counts. */
  private heap: Int32Array;
  /** where[slot] = position of the slot in heap. */
  private where: Int32Array;
  private size = 0;
  private total = 0;

  private constructor(k: number, capacity: number) {
    this.k = k;
    this.capacity = capacity;
    const initial = Math.min(capacity, 16);
    this.counts = new Float64Array(initial);
    this.errors = new Float64Array(initial);
    this.heap = new Int32Array(initial);
    this.where = new Int32Array(initial);
  }

  static create(params: TopKParams): TopK {
    const k = intParam(params.k, 10, 'k', 1, TOPK_MAX_K);
    const capacity = intParam(params.capacity, Math.max(k * CAPACITY_FACTOR, MIN_CAPACITY), 'capacity', k, TOPK_MAX_K * CAPACITY_FACTOR);
    return new TopK(k, capacity);
  }

  /** Adds a value with a weight (topk_agg's weight, topk_increment); NULL values are ignored. */
  add(value: Value, weight: number = 1): this {
    if (value === null) return this;
    if (weight !== 1) weight = toWeight(weight);
    if (weight === 0) return this;
    this.total += weight;
    const key = valueKey(value);
    const slot = this.slots.get(key);
    if (slot !== undefined) {
      this.counts[slot] += weight;
      this.siftDown(this.where[slot]);
      return this;
    }
    if (this.size < this.capacity) {
      this.insert(key, value, weight, 0);
      return this;
    }
    const min = this.heap[0];
    this.slots.delete(this.keys[min]);
    this.slots.set(key, min);
    this.keys[min] = key;
    this.values[min] = value;
    this.errors[min] = this.counts[min];
    this.counts[min] += weight;
    this.siftDown(0);
    return this;
  }

  private insert(key: unknown, value: Value, count: number, error: number): void {
    const slot = this.size++;
    if (slot === this.counts.length) this.grow();
    this.slots.set(key, slot);
    this.keys[slot] = key;
    this.values[slot] = value;
    this.counts[slot] = count;
    this.errors[slot] = error;
    this.heap[slot] = slot;
    this.where[slot] = slot;
    this.siftUp(slot);
  }

  private grow(): void {
    const size = Math.min(this.capacity, this.counts.length * 2);
    const counts = new Float64Array(size);
    counts.set(this.counts);
    this.counts = counts;
    const errors = new Float64Array(size);
    errors.set(this.errors);
    this.errors = errors;
    const heap = new Int32Array(size);
    heap.set(this.heap);
    this.heap = heap;
    const where = new Int32Array(size);
    where.set(this.where);
    this.where = where;
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const counts = this.counts;
    const slot = heap[i];
    const c = counts[slot];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const ps = heap[parent];
      if (counts[ps] <= c) break;
      heap[i] = ps;
      this.where[ps] = i;
      i = parent;
    }
    heap[i] = slot;
    this.where[slot] = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const counts = this.counts;
    const n = this.size;
    const slot = heap[i];
    const c = counts[slot];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && counts[heap[child + 1]] < counts[heap[child]]) child++;
      const cs = heap[child];
      if (counts[cs] >= c) break;
      heap[i] = cs;
      this.where[cs] = i;
      i = child;
    }
    heap[i] = slot;
    this.where[slot] = i;
  }

  /** The smallest monitored count when every counter is taken, else 0. */
  private floor(): number {
    return this.size < this.capacity ? 0 : this.counts[this.heap[0]];
  }

  /** Total weight added. */
  totalCount(): number {
    return this.total;
  }

  /** Estimated frequency of a value: its counter, or the floor if it is not monitored. */
  frequency(value: Value): number {
    const slot = this.slots.get(valueKey(value));
    return slot === undefined ? this.floor() : this.counts[slot];
  }

  /** All monitored entries, by frequency desc then value asc. */
  private ranked(): number[] {
    const order: number[] = [];
    for (let i = 0; i < this.size; i++) order.push(i);
    const counts = this.counts;
    order.sort((a, b) => counts[b] - counts[a] || compareValues(this.values[a], this.values[b]));
    return order;
  }

  /** The k most frequent values with their frequencies (topk), by frequency desc then value asc. */
  top(): TopKEntry[] {
    return this.ranked()
      .slice(0, this.k)
      .map((slot) => ({ value: this.values[slot], frequency: this.counts[slot] }));
  }

  /** topk_values */
  topValues(): Value[] {
    return this.top().map((e) => e.value);
  }

  /** topk_freqs */
  topFrequencies(): number[] {
    return this.top().map((e) => e.frequency);
  }

  /** Adds the counts of `other`; both must have the same k and capacity. */
  merge(other: TopK): this {
    if (other.k !== this.k || other.capacity !== this.capacity) {
      throw invalidParameter('cannot merge top-k sketches with different k');
    }
    const floorA = this.floor();
    const floorB = other.floor();
    interface Item {
      key: unknown;
      value: Value;
      count: number;
      error: number;
    }
    const items: Item[] = [];
    for (let slot = 0; slot < this.size; slot++) {
      const key = this.keys[slot];
      const theirs = other.slots.get(key);
      items.push({
        key,
        value: this.values[slot],
        count: this.counts[slot] + (theirs === undefined ? floorB : other.counts[theirs]),
        error: this.errors[slot] + (theirs === undefined ? floorB : other.errors[theirs]),
      });
    }
    for (let slot = 0; slot < other.size; slot++) {
      const key = other.keys[slot];
      if (this.slots.has(key)) continue;
      items.push({ key, value: other.values[slot], count: other.counts[slot] + floorA, error: other.errors[slot] + floorA });
    }
    items.sort((a, b) => b.count - a.count || compareValues(a.value, b.value));
    const total = this.total + other.total;
    this.reset();
    this.total = total;
    for (let i = 0; i < items.length && i < this.capacity; i++) {
      this.insert(items[i].key, items[i].value, items[i].count, items[i].error);
    }
    return this;
  }

  private reset(): void {
    this.slots.clear();
    this.keys = [];
    this.values = [];
    this.size = 0;
    this.total = 0;
  }

  clone(): TopK {
    const copy = new TopK(this.k, this.capacity);
    copy.total = this.total;
    for (let i = 0; i < this.size; i++) copy.insert(this.keys[i], this.values[i], this.counts[i], this.errors[i]);
    return copy;
  }

  /**
   * Format 2 (what the SQL functions topk/topk_values/topk_freqs read):
   *   0 version (2), 1 kind, 2 k (u32), 6 capacity (u32), 10 total (u64),
   *   18 entry count n (u32), 22 the entries by frequency desc, value asc:
   *   count (u64), error (u64), value tag (u8: 0 text, 1 integer, 2 float,
   *   3 boolean, 4 bigint), the value as PostgreSQL text (u32 byte length, UTF-8).
   * All integers big-endian. Format 1 (varints, tagged values) is still read.
   */
  serialize(): Uint8Array {
    const w = new ByteWriter(32 + this.size * 32);
    w.header(SketchKind.topK, 2).u32be(this.k).u32be(this.capacity).u64be(this.total).u32be(this.size);
    for (const slot of this.ranked()) {
      const [tag, text] = valueText(this.values[slot]);
      w.u64be(this.counts[slot]).u64be(this.errors[slot]).u8(tag).text(text);
    }
    return w.finish();
  }

  static deserialize(bytes: Uint8Array): TopK {
    const r = new ByteReader(bytes, 'topk');
    const version = r.header(SketchKind.topK, 2);
    const k = version === 1 ? r.varuint() : r.u32be();
    const capacity = version === 1 ? r.varuint() : r.u32be();
    if (k < 1 || k > TOPK_MAX_K || capacity < k || capacity > TOPK_MAX_K * CAPACITY_FACTOR) throw corrupt('topk');
    const t = new TopK(k, capacity);
    t.total = version === 1 ? r.varuint() : r.u64be();
    const n = version === 1 ? r.count(capacity) : r.u32be();
    if (n > capacity) throw corrupt('topk');
    for (let i = 0; i < n; i++) {
      let value: Value, count: number, error: number;
      if (version === 1) {
        value = r.value();
        count = r.varuint();
        error = r.varuint();
      } else {
        count = r.u64be();
        error = r.u64be();
        const tag = r.u8();
        value = textValue(tag, r.text());
      }
      const key = valueKey(value);
      if (value === null || count === 0 || error > count || t.slots.has(key)) throw corrupt('topk');
      t.insert(key, value, count, error);
    }
    r.end();
    return t;
  }
}

/** A value's tag and PostgreSQL text (the engine hands sketches PostgreSQL's text output as strings). */
export function valueText(v: Value): [number, string] {
  switch (typeof v) {
    case 'string':
      return [0, v];
    case 'number':
      return Number.isSafeInteger(v) ? [1, String(v)] : [2, pgFloatText(v)];
    case 'boolean':
      return [3, v ? 't' : 'f'];
    case 'bigint':
      return [4, v.toString()];
    default:
      throw corrupt('topk');
  }
}

export function textValue(tag: number, text: string): Value {
  switch (tag) {
    case 0:
      return text;
    case 1:
    case 2:
      return Number(text);
    case 3:
      return text === 't';
    case 4:
      if (!/^-?\d+$/.test(text)) throw corrupt('topk');
      return BigInt(text);
    default:
      throw corrupt('topk');
  }
}
