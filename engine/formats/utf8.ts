/**
 * UTF-8 handling for the COPY decoders, with PostgreSQL's exact notion of
 * validity (pg_utf8_verifystr: no NUL bytes, no overlong forms, no surrogates,
 * nothing above U+10FFFF) and its exact error message
 * (`invalid byte sequence for encoding "UTF8": 0xc3 0x28`, SQLSTATE 22021).
 */
import { isUtf8 } from 'node:buffer';
import { SqlError } from '../errors.ts';

export const CHARACTER_NOT_IN_REPERTOIRE = '22021';

/** pg_utf_mblen: the sequence length a lead byte announces (1 for anything invalid). */
export function pgUtf8MbLen(b: number): number {
  if ((b & 0x80) === 0) return 1;
  if ((b & 0xe0) === 0xc0) return 2;
  if ((b & 0xf0) === 0xe0) return 3;
  if ((b & 0xf8) === 0xf0) return 4;
  return 1;
}

/** pg_utf8_islegal for a sequence of length `len` (1-4) starting at `p`. */
function isLegal(s: Uint8Array, p: number, len: number): boolean {
  const lead = s[p]!;
  if (len > 4) return false;
  // trailing bytes 3 and 4: plain continuation bytes
  for (let k = 2; k < len; k++) {
    const a = s[p + k]!;
    if (a < 0x80 || a > 0xbf) return false;
  }
  if (len >= 2) {
    // the second byte's range depends on the lead (no overlong forms, surrogates or > U+10FFFF)
    const a = s[p + 1]!;
    const lo = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const hi = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    if (a < lo || a > hi) return false;
  }
  if (lead >= 0x80 && lead < 0xc2) return false;
  if (lead > 0xf4) return false;
  return true;
}

/**
 * Offset of the first sequence PostgreSQL rejects in bytes[start, end), or -1.
 * An incomplete sequence cut off by `end` counts as invalid.
 */
export function findInvalidUtf8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let p = start;
  while (p < end) {
    const b = bytes[p]!;
    if (b < 0x80) {
      if (b === 0) return p;
      p++;
      continue;
    }
    const l = pgUtf8MbLen(b);
    if (l > end - p || !isLegal(bytes, p, l)) return p;
    p += l;
  }
  return -1;
}

/** report_invalid_encoding(): shows the bytes of the offending character that are available. */
export function invalidByteSequence(bytes: Uint8Array, at: number, end = bytes.length): SqlError {
  const l = pgUtf8MbLen(bytes[at]!);
  const lim = Math.min(l, end - at, 8);
  const shown: string[] = [];
  for (let j = 0; j < lim; j++) shown.push('0x' + bytes[at + j]!.toString(16).padStart(2, '0'));
  return new SqlError(CHARACTER_NOT_IN_REPERTOIRE, `invalid byte sequence for encoding "UTF8": ${shown.join(' ')}`);
}

/** True when the bytes are valid UTF-8 for PostgreSQL (fast path: simdutf + memchr). */
export function isPgUtf8(bytes: Uint8Array): boolean {
  return isUtf8(bytes) && bytes.indexOf(0) === -1;
}

/**
 * Streaming UTF-8 to string decoding: each chunk is decoded once; a character
 * split across chunks is kept back (at most 3 bytes) until its end arrives.
 * On invalid input `decode` returns the valid prefix and sets `error`; after
 * that it returns only ''.
 */
export class Utf8StreamDecoder {
  private pending: Uint8Array | null = null;
  error: SqlError | null = null;

  decode(chunk: Uint8Array): string {
    if (this.error) return '';
    let buf: Uint8Array = chunk;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const n = buf.length;
    // Keep back an incomplete trailing sequence.
    let end = n;
    for (let k = n - 1; k >= 0 && k >= n - 3; k--) {
      const b = buf[k]!;
      if ((b & 0xc0) === 0x80) continue;
      if (k + pgUtf8MbLen(b) > n) end = k;
      break;
    }
    if (end < n) this.pending = Uint8Array.prototype.slice.call(buf, end);
    const body = end === n ? buf : buf.subarray(0, end);
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (isPgUtf8(b)) return b.toString('utf8');
    const bad = findInvalidUtf8(buf, 0, n);
    // bad < end always holds: the whole body is invalid somewhere.
    this.error = invalidByteSequence(buf, bad, n);
    this.pending = null;
    return b.toString('utf8', 0, bad);
  }

  /** At end of input: an incomplete character left over is an error. */
  finish(): SqlError | null {
    if (this.error) return this.error;
    if (this.pending !== null) {
      this.error = invalidByteSequence(this.pending, 0, this.pending.length);
      this.pending = null;
    }
    return this.error;
  }

  reset(): void {
    this.pending = null;
    this.error = null;
  }
}
