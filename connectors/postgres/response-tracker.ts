import { SqlError, SqlState } from '../../engine/errors.ts';

/** Frontend type bytes whose answers the tracker waits for (frontend 'E' is Execute, not an error). */
const Frontend = {
  query: 0x51, // Q
  sync: 0x53, // S
  parse: 0x50, // P
  bind: 0x42, // B
  describe: 0x44, // D
  execute: 0x45, // E
  close: 0x43, // C
  flush: 0x48, // H
} as const;

const Backend = {
  errorResponse: 0x45, // E
  readyForQuery: 0x5a, // Z
} as const;

/** One frontend message the response still owes an answer to. */
interface Step {
  /** Backend message types that answer it. */
  endsWith: readonly number[];
  /** Query and Sync: answered by ReadyForQuery even after an error, so an error does not end them. */
  outlivesErrors: boolean;
  /** Sync only: where PostgreSQL stops skipping messages after an extended-protocol error. */
  endsSkipping: boolean;
}

const codes = (types: string): number[] => [...types].map((t) => t.charCodeAt(0));
const answeredBy = (types: string): Step => ({ endsWith: codes(types), outlivesErrors: false, endsSkipping: false });

const QUERY: readonly Step[] = [{ endsWith: codes('Z'), outlivesErrors: true, endsSkipping: false }];
const SYNC: readonly Step[] = [{ endsWith: codes('Z'), outlivesErrors: true, endsSkipping: true }];
const PARSE: readonly Step[] = [answeredBy('1')];
const BIND: readonly Step[] = [answeredBy('2')];
// A statement is described by ParameterDescription and then RowDescription or NoData; a portal by the latter only.
const DESCRIBE_STATEMENT: readonly Step[] = [answeredBy('t'), answeredBy('Tn')];
const DESCRIBE_PORTAL: readonly Step[] = [answeredBy('Tn')];
// Rows and COPY OUT data come before these.
const EXECUTE: readonly Step[] = [answeredBy('CIs')];
const CLOSE: readonly Step[] = [answeredBy('3')];

/**
 * Knows when the backend has fully answered a batch of frontend messages, so
 * a forwarded batch gets back exactly its own response and nothing of the
 * next one. It walks the batch once up front and then follows the backend's
 * message types; the backend's bytes themselves are not its business.
 */
export class ResponseTracker {
  private readonly steps: readonly Step[];
  private next = 0;
  /** True when the batch leaves the server waiting for more (no final Sync or Query): a Flush must follow. */
  readonly needsFlush: boolean;

  constructor(request: Buffer) {
    const offsets = offsetsOf(request);
    this.steps = offsets.flatMap((offset) => stepsFor(request, offset));
    const last = offsets.length ? request[offsets[offsets.length - 1]] : undefined;
    this.needsFlush = last !== undefined && last !== Frontend.sync && last !== Frontend.query && last !== Frontend.flush;
  }

  get complete(): boolean {
    return this.next >= this.steps.length;
  }

  /** Follows one backend message (by its type byte). */
  take(type: number): void {
    const step = this.steps[this.next];
    if (!step) return;
    if (step.endsWith.includes(type)) {
      this.next++;
    } else if (type === Backend.errorResponse && !step.outlivesErrors) {
      // PostgreSQL ignores every message up to the next Sync after an extended-protocol error.
      this.next = this.indexOfNextSync();
    } else if (type === Backend.readyForQuery) {
      // Never expected here; resynchronise on the ReadyForQuery rather than wait forever.
      this.next = this.indexOfNextSync() + 1;
    }
  }

  private indexOfNextSync(): number {
    const at = this.steps.findIndex((step, i) => i >= this.next && step.endsSkipping);
    return at < 0 ? this.steps.length : at;
  }
}

function stepsFor(request: Buffer, offset: number): readonly Step[] {
  switch (request[offset]) {
    case Frontend.query:
      return QUERY;
    case Frontend.sync:
      return SYNC;
    case Frontend.parse:
      return PARSE;
    case Frontend.bind:
      return BIND;
    case Frontend.describe:
      return request[offset + 5] === 0x53 ? DESCRIBE_STATEMENT : DESCRIBE_PORTAL; // 'S'
    case Frontend.execute:
      return EXECUTE;
    case Frontend.close:
      return CLOSE;
    default:
      // Flush and stray COPY messages produce no answer of their own.
      return [];
  }
}

/** Offsets of the frontend messages in a batch. */
function offsetsOf(request: Buffer): number[] {
  const offsets: number[] = [];
  let offset = 0;
  while (offset < request.length) {
    if (request.length - offset < 5) throw malformed(offset);
    const length = request.readInt32BE(offset + 1);
    if (length < 4 || offset + 1 + length > request.length) throw malformed(offset);
    offsets.push(offset);
    offset += 1 + length;
  }
  return offsets;
}

function malformed(offset: number): SqlError {
  return new SqlError(SqlState.protocolViolation, `malformed frontend message at offset ${offset} in a batch for the serving store`);
}
