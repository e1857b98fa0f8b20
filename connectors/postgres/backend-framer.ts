import { SqlError, SqlState } from '../../engine/errors.ts';

const HEADER_LENGTH = 5;

/** Called for every complete backend message: `buf[start]` is its type byte, `end` is just past it. */
export type MessageVisitor = (buf: Buffer, start: number, end: number) => void;

/**
 * Cuts a TCP byte stream into whole backend messages. A message split over
 * several chunks is held until its last byte arrives, and the pieces are
 * joined once, so a large DataRow arriving in many chunks costs no more than
 * one copy (joining at every chunk would be quadratic).
 */
export class BackendFramer {
  private held: Buffer[] = [];
  private heldLength = 0;

  push(chunk: Buffer, visit: MessageVisitor): void {
    if (this.held.length === 0) {
      this.visitWhole(chunk, visit);
      return;
    }
    this.held.push(chunk);
    this.heldLength += chunk.length;
    if (this.heldLength < this.lengthOfHeldMessage()) return;
    const joined = Buffer.concat(this.held, this.heldLength);
    this.held = [];
    this.heldLength = 0;
    this.visitWhole(joined, visit);
  }

  /** True when a message has started but not ended: the connection dropped mid-message. */
  get partial(): boolean {
    return this.heldLength > 0;
  }

  private visitWhole(buf: Buffer, visit: MessageVisitor): void {
    let offset = 0;
    while (buf.length - offset >= HEADER_LENGTH) {
      const end = offset + 1 + messageLength(buf, offset);
      if (end > buf.length) break;
      visit(buf, offset, end);
      offset = end;
    }
    if (offset < buf.length) {
      this.held = [buf.subarray(offset)];
      this.heldLength = buf.length - offset;
    }
  }

  /** Bytes needed for the first held message (its header alone while the length is unknown). */
  private lengthOfHeldMessage(): number {
    if (this.heldLength < HEADER_LENGTH) return HEADER_LENGTH;
    if (this.held[0].length < HEADER_LENGTH) this.held = [Buffer.concat(this.held, this.heldLength)];
    return 1 + messageLength(this.held[0], 0);
  }
}

function messageLength(buf: Buffer, offset: number): number {
  const length = buf.readInt32BE(offset + 1);
  if (length < 4) {
    throw new SqlError(SqlState.protocolViolation, `invalid message length ${length} from the serving store (type "${String.fromCharCode(buf[offset])}")`);
  }
  return length;
}
