import { SqlError, SqlState } from '../errors.ts';

/** `PGCOPY\n\377\r\n\0`: the signature every binary COPY stream starts with. */
const SIGNATURE = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]);
const HEADER_FIXED = SIGNATURE.length + 8;
/** Flag bit 16 of the header: each tuple carries an OID (not something a stream has). */
const HAS_OIDS = 1 << 16;

/** One row of a binary COPY: each field's bytes in its type's binary (send/receive) format, or null. */
export type BinaryRow = (Buffer | null)[];

/**
 * Reads `COPY … FROM STDIN (FORMAT binary)` data as it arrives, in whatever
 * chunks: the header, then tuples of length-prefixed fields, then the -1
 * trailer. Errors carry PostgreSQL's SQLSTATE (22P04) and messages.
 */
export class BinaryCopyDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private headerRead = false;
  private finished = false;

  constructor(
    private readonly columnCount: number,
    private readonly onRows: (rows: BinaryRow[]) => void,
  ) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const rows: BinaryRow[] = [];
    let at = 0;
    if (!this.headerRead) {
      const headerEnd = this.readHeader();
      if (headerEnd < 0) return;
      at = headerEnd;
      this.headerRead = true;
    }
    for (;;) {
      const next = this.readTuple(at, rows);
      if (next < 0) break;
      at = next;
    }
    this.pending = this.pending.subarray(at);
    if (rows.length) this.onRows(rows);
  }

  end(): void {
    if (!this.finished || this.pending.length) {
      throw copyError(this.headerRead ? 'unexpected EOF in COPY data' : 'COPY file signature not recognized');
    }
  }

  /** Where the tuples start, or -1 until the whole header has arrived. */
  private readHeader(): number {
    const buf = this.pending;
    if (buf.length < HEADER_FIXED) return -1;
    if (!buf.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw copyError('COPY file signature not recognized');
    const flags = buf.readInt32BE(SIGNATURE.length);
    if (flags & HAS_OIDS) throw copyError('invalid COPY file header (WITH OIDS)');
    if ((flags & 0xffff0000 & ~HAS_OIDS) !== 0) throw copyError('unrecognized critical flags in COPY file header');
    const extension = buf.readInt32BE(SIGNATURE.length + 4);
    if (extension < 0) throw copyError('invalid COPY file header (missing length)');
    return buf.length < HEADER_FIXED + extension ? -1 : HEADER_FIXED + extension;
  }

  /** Reads one tuple at `at` into `rows`; the offset after it, or -1 when it has not all arrived. */
  private readTuple(at: number, rows: BinaryRow[]): number {
    const buf = this.pending;
    if (this.finished) {
      if (at < buf.length) throw copyError('received copy data after EOF marker');
      return -1;
    }
    if (buf.length - at < 2) return -1;
    const fields = buf.readInt16BE(at);
    if (fields === -1) {
      this.finished = true;
      return at + 2;
    }
    if (fields !== this.columnCount) throw copyError(`row field count is ${fields}, expected ${this.columnCount}`);
    let offset = at + 2;
    const row: BinaryRow = new Array(fields);
    for (let f = 0; f < fields; f++) {
      if (buf.length - offset < 4) return this.unread();
      const length = buf.readInt32BE(offset);
      offset += 4;
      if (length === -1) {
        row[f] = null;
        continue;
      }
      if (length < 0) throw copyError('invalid field size');
      if (buf.length - offset < length) return this.unread();
      row[f] = Buffer.from(buf.subarray(offset, offset + length));
      offset += length;
    }
    rows.push(row);
    return offset;
  }

  /** A tuple cut by the end of the chunk: read again, whole, when more data comes. */
  private unread(): number {
    return -1;
  }
}

function copyError(message: string): SqlError {
  return new SqlError(SqlState.badCopyFileFormat, message);
}
