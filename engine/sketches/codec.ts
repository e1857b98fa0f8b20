/**
 * The binary form shared by every sketch state, so a state can live in a
 * PostgreSQL bytea column and be read back by a later Sluice:
 *
 *   byte 0   format version (FORMAT_VERSION; a reader accepts every version up to its own)
 *   byte 1   sketch kind (SketchKind)
 *   ...      the sketch's own fields: in version 1 little-endian, with LEB128 varints
 *            for counts; in version 2 (the layouts SQL functions read, see
 *            engine/sketch-functions.ts) fixed-width big-endian fields and values
 *            as u32-length-prefixed UTF-8 text
 */
import { SqlError, SqlState } from '../errors.ts';
import type { Value } from '../values/index.ts';

/**
 * The highest format version this Sluice reads. Each sketch writes its own
 * current version: 2 for the layouts that PostgreSQL functions read directly
 * (fixed-width big-endian fields, values as length-prefixed UTF-8 text; see
 * engine/sketch-functions.ts): top-k, HyperLogLog, count-min, bloom. The
 * others still write version 1.
 */
export const FORMAT_VERSION = 2;

/** The second byte of every serialized state. Values are stored: never renumber. */
export const SketchKind = {
  hll: 1,
  tdigest: 2,
  countMin: 3,
  topK: 4,
  bloom: 5,
  set: 6,
  keyed: 7,
  firstValues: 8,
  bucket: 9,
} as const;
export type SketchKind = (typeof SketchKind)[keyof typeof SketchKind];

const KIND_NAMES: Record<number, string> = {
  1: 'hll',
  2: 'tdigest',
  3: 'cms',
  4: 'topk',
  5: 'bloom',
  6: 'set',
  7: 'keyed',
  8: 'first_values',
  9: 'bucket',
};

export function sketchKindName(kind: number): string {
  return KIND_NAMES[kind] ?? `unknown sketch kind ${kind}`;
}

/** invalid_binary_representation: a bytea that is not a state this Sluice can read. */
export const INVALID_BINARY_REPRESENTATION = '22P03';

export function corrupt(what: string): SqlError {
  return new SqlError(INVALID_BINARY_REPRESENTATION, `invalid ${what} state`);
}

export function invalidParameter(message: string): SqlError {
  return new SqlError(SqlState.invalidParameterValue, message);
}

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialSize = 64) {
    this.buf = new Uint8Array(Math.max(16, initialSize));
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  header(kind: SketchKind, version = 1): this {
    this.u8(version);
    return this.u8(kind);
  }

  /** Big-endian fields of the version-2 layouts (what plpgsql reads with get_byte/substring). */
  u32be(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v, false);
    this.pos += 4;
    return this;
  }

  u16be(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v, false);
    this.pos += 2;
    return this;
  }

  /** A non-negative integer up to 2^53 as 8 big-endian bytes. */
  u64be(v: number): this {
    this.ensure(8);
    this.view.setUint32(this.pos, Math.floor(v / 0x100000000), false);
    this.view.setUint32(this.pos + 4, v % 0x100000000, false);
    this.pos += 8;
    return this;
  }

  f64be(v: number): this {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, false);
    this.pos += 8;
    return this;
  }

  /** UTF-8 text prefixed with its byte length (u32be). */
  text(s: string): this {
    const encoded = textEncoder.encode(s);
    this.u32be(encoded.length);
    return this.bytes(encoded);
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
    return this;
  }

  i16(v: number): this {
    this.ensure(2);
    this.view.setInt16(this.pos, v, true);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
    return this;
  }

  f64(v: number): this {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
    return this;
  }

  /** LEB128 of a non-negative integer up to 2^53. */
  varuint(v: number): this {
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  string(s: string): this {
    const encoded = textEncoder.encode(s);
    this.varuint(encoded.length);
    return this.bytes(encoded);
  }

  /** A tagged engine value (see ValueTag). */
  value(v: Value): this {
    switch (typeof v) {
      case 'boolean':
        return this.u8(v ? ValueTag.true : ValueTag.false);
      case 'number':
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
          return this.u8(v >= 0 ? ValueTag.posInt : ValueTag.negInt).varuint(Math.abs(v));
        }
        return this.u8(ValueTag.float).f64(v);
      case 'bigint':
        this.u8(ValueTag.bigint);
        return this.string(v.toString());
      case 'string':
        this.u8(ValueTag.string);
        return this.string(v);
      default:
        return this.u8(ValueTag.null);
    }
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Tags of serialized values; a number that is a safe integer is stored as a varint. */
const ValueTag = {
  null: 0,
  false: 1,
  true: 2,
  posInt: 3,
  negInt: 4,
  float: 5,
  bigint: 6,
  string: 7,
} as const;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export class ByteReader {
  private readonly view: DataView;
  pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Reads and checks the version and kind bytes (the sketch's versions are 1 to `latest`); returns the version. */
  header(kind: SketchKind, latest = 1): number {
    if (this.buf.length < 2) throw corrupt(this.what);
    const version = this.buf[0];
    if (version < 1 || version > latest) {
      throw new SqlError(INVALID_BINARY_REPRESENTATION, `unsupported ${this.what} format version ${version}`, {
        hint: `This Sluice reads ${this.what} format versions 1 to ${latest}.`,
      });
    }
    if (this.buf[1] !== kind) {
      throw new SqlError(INVALID_BINARY_REPRESENTATION, `expected a ${this.what} state but found a ${sketchKindName(this.buf[1])} state`);
    }
    this.pos = 2;
    return version;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw corrupt(this.what);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  i16(): number {
    this.need(2);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  u16be(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, false);
    this.pos += 2;
    return v;
  }

  u32be(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, false);
    this.pos += 4;
    return v;
  }

  u64be(): number {
    this.need(8);
    const v = this.view.getUint32(this.pos, false) * 0x100000000 + this.view.getUint32(this.pos + 4, false);
    this.pos += 8;
    if (v > Number.MAX_SAFE_INTEGER) throw corrupt(this.what);
    return v;
  }

  f64be(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }

  text(): string {
    const n = this.u32be();
    try {
      return textDecoder.decode(this.bytes(n));
    } catch (e) {
      if (e instanceof SqlError) throw e;
      throw corrupt(this.what);
    }
  }

  varuint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      this.need(1);
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 56) throw corrupt(this.what);
    }
    if (result > Number.MAX_SAFE_INTEGER) throw corrupt(this.what);
    return result;
  }

  /** A varint that must not exceed `max` (a count that sizes an allocation). */
  count(max: number): number {
    const n = this.varuint();
    if (n > max) throw corrupt(this.what);
    return n;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  string(): string {
    const n = this.varuint();
    try {
      return textDecoder.decode(this.bytes(n));
    } catch (e) {
      if (e instanceof SqlError) throw e;
      throw corrupt(this.what);
    }
  }

  value(): Value {
    const tag = this.u8();
    switch (tag) {
      case ValueTag.null:
        return null;
      case ValueTag.false:
        return false;
      case ValueTag.true:
        return true;
      case ValueTag.posInt:
        return this.varuint();
      case ValueTag.negInt:
        return -this.varuint();
      case ValueTag.float:
        return this.f64();
      case ValueTag.bigint: {
        const text = this.string();
        if (!/^-?\d+$/.test(text)) throw corrupt(this.what);
        return BigInt(text);
      }
      case ValueTag.string:
        return this.string();
      default:
        throw corrupt(this.what);
    }
  }

  /** Every byte must have been read. */
  end(): void {
    if (this.pos !== this.buf.length) throw corrupt(this.what);
  }
}

/** The kind byte of a serialized state (after checking the version byte). */
export function peekKind(bytes: Uint8Array): SketchKind {
  if (bytes.length < 2) throw corrupt('sketch');
  const version = bytes[0];
  if (version < 1 || version > FORMAT_VERSION) {
    throw new SqlError(INVALID_BINARY_REPRESENTATION, `unsupported sketch format version ${version}`);
  }
  if (!KIND_NAMES[bytes[1]]) throw corrupt('sketch');
  return bytes[1] as SketchKind;
}
