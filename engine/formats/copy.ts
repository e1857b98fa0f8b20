/**
 * Decoders for PostgreSQL COPY FROM data in `text` and `csv` format: bytes in,
 * rows of text fields (string | null) out, following PostgreSQL 18's
 * copyfromparse.c rule for rule (line endings, end-of-data marker,
 * backslash escapes, CSV quoting, NULL markers, FORCE_NULL / FORCE_NOT_NULL,
 * HEADER, and the errors with their messages and SQLSTATEs).
 *
 * How it works: each chunk is decoded from UTF-8 once (an incomplete trailing
 * character is kept back); a single char loop over the string then splits
 * lines and fields at the same time, slicing fields without escapes or quotes
 * straight out of the chunk string. A record cut off by the end of a chunk is
 * kept as text and parsed again once its end has arrived (a cheap resumable
 * scan over new chunks decides when), so a huge record spread over many
 * chunks costs linear time, not quadratic.
 */
import { SqlError, SqlState } from '../errors.ts';
import { compileCopyOptions, type CompiledCopyFormat, type CopyFormatOptions } from './copy-options.ts';
import { Utf8StreamDecoder, findInvalidUtf8, invalidByteSequence, isPgUtf8, CHARACTER_NOT_IN_REPERTOIRE } from './utf8.ts';

export type CopyRow = (string | null)[];

const LF = 10;
const CR = 13;
const BS = 92;
const DOT = 46;

const EOL_UNKNOWN = 0;
const EOL_NL = 1;
const EOL_CR = 2;
const EOL_CRNL = 3;

const BAD_COPY_FILE_FORMAT = SqlState.badCopyFileFormat;

/** MAX_COPY_DATA_DISPLAY: PostgreSQL shows at most 100 bytes of a line in the error context. */
const MAX_DISPLAY_BYTES = 100;

/**
 * An error in COPY data. `detail` (and `context`) carry what PostgreSQL puts in
 * the CONTEXT field: `COPY t, line 3: "a\tb"` (the line is shown when the error
 * concerns its fields, as PostgreSQL does); `lineNumber` is the 1-based line.
 */
export class CopyFormatError extends SqlError {
  readonly lineNumber: number;
  readonly context: string;

  constructor(code: string, message: string, lineNumber: number, context: string, hint?: string) {
    super(code, message, { detail: context, hint });
    this.name = 'CopyFormatError';
    this.lineNumber = lineNumber;
    this.context = context;
  }
}

/** CopyLimitPrintoutLength: clip to 100 bytes at a character boundary, then add "...". */
export function limitPrintout(str: string): string {
  if (str.length <= 33) return str; // at most 3 bytes per UTF-16 unit
  if (Buffer.byteLength(str, 'utf8') <= MAX_DISPLAY_BYTES) return str;
  let bytes = 0;
  let i = 0;
  while (i < str.length) {
    const cp = str.codePointAt(i)!;
    const len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes + len > MAX_DISPLAY_BYTES) break;
    bytes += len;
    i += cp >= 0x10000 ? 2 : 1;
  }
  return str.slice(0, i) + '...';
}

function isOctal(c: number): boolean {
  return c >= 48 && c <= 55;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function simpleEscape(c: number): number {
  switch (c) {
    case 98: return 8; // \b
    case 102: return 12; // \f
    case 110: return 10; // \n
    case 114: return 13; // \r
    case 116: return 9; // \t
    case 118: return 11; // \v
    default: return c; // any other character stands for itself
  }
}

/**
 * De-escapes a text-format field s[a, b) (CopyReadAttributesText). Octal and
 * hex escapes produce bytes; when one is 0 or >= 0x80 the result is checked
 * as UTF-8 the way PostgreSQL does (pg_verifymbstr), giving an SqlError.
 */
function deEscapeText(s: string, a: number, b: number): string | SqlError {
  let out = '';
  let bytes: number[] | null = null; // byte mode, once an escape produced a non-ASCII byte or NUL
  let run = a;
  let i = a;
  const appendRun = (to: number): void => {
    if (to <= run) return;
    if (bytes === null) out += s.slice(run, to);
    else for (const x of Buffer.from(s.slice(run, to), 'utf8')) bytes.push(x);
  };
  while (i < b) {
    if (s.charCodeAt(i) !== BS) {
      i++;
      continue;
    }
    appendRun(i);
    i++;
    if (i >= b) {
      run = b;
      break;
    }
    const e = s.charCodeAt(i++);
    let byte = -1;
    if (isOctal(e)) {
      let v = e - 48;
      if (i < b && isOctal(s.charCodeAt(i))) {
        v = v * 8 + s.charCodeAt(i++) - 48;
        if (i < b && isOctal(s.charCodeAt(i))) v = v * 8 + s.charCodeAt(i++) - 48;
      }
      byte = v & 0xff;
    } else if (e === 120 /* x */ && i < b && hexValue(s.charCodeAt(i)) >= 0) {
      let v = hexValue(s.charCodeAt(i++));
      if (i < b && hexValue(s.charCodeAt(i)) >= 0) v = v * 16 + hexValue(s.charCodeAt(i++));
      byte = v;
    }
    if (byte >= 0) {
      if (bytes === null && (byte === 0 || byte >= 0x80)) {
        bytes = [...Buffer.from(out, 'utf8')];
        out = '';
      }
      if (bytes !== null) bytes.push(byte);
      else out += String.fromCharCode(byte);
      run = i;
    } else {
      const c = simpleEscape(e);
      if (c === e) {
        run = i - 1; // the character itself (which may start a surrogate pair) is kept as data
      } else {
        if (bytes === null) out += String.fromCharCode(c);
        else bytes.push(c);
        run = i;
      }
    }
  }
  appendRun(b);
  if (bytes === null) return out;
  const buf = Buffer.from(bytes);
  const bad = findInvalidUtf8(buf);
  if (bad >= 0) return invalidByteSequence(buf, bad);
  return buf.toString('utf8');
}

/**
 * The shared parser: state that lives across lines (newline style, line
 * number, header, end of data) and the two char loops.
 */
abstract class CopyParser {
  protected readonly fmt: CompiledCopyFormat;
  protected readonly ncols: number;
  private readonly nullString: string;
  private readonly nullLength: number;

  protected eol = EOL_UNKNOWN;
  /** PostgreSQL's cur_lineno for the last line consumed. */
  protected lineNo = 0;
  protected headerPending: boolean;
  /** End of data reached (end-of-copy marker or end()), or failed. */
  protected finished = false;
  protected out: CopyRow[] = [];
  /** The line each row of `out` ended on (PostgreSQL's cur_lineno), for messages about a row. */
  protected outLines: number[] = [];
  protected rows = 0;
  /** First de-escaping error of the current record. */
  private fieldError: SqlError | null = null;

  constructor(columnCount: number, options: CopyFormatOptions | CompiledCopyFormat) {
    this.fmt = 'format' in options ? compileCopyOptions(options) : options;
    if (!Number.isInteger(columnCount) || columnCount < 0) throw new RangeError(`bad column count ${columnCount}`);
    this.ncols = columnCount;
    this.nullString = this.fmt.nullString;
    this.nullLength = this.nullString.length;
    this.headerPending = this.fmt.header !== false;
  }

  protected resetState(): void {
    this.eol = EOL_UNKNOWN;
    this.lineNo = 0;
    this.headerPending = this.fmt.header !== false;
    this.finished = false;
    this.out = [];
    this.outLines = [];
    this.fieldError = null;
  }

  // ---- errors ----

  protected contextOf(line: number, text?: string): string {
    const where = this.fmt.relationName === undefined ? `line ${line}` : `COPY ${this.fmt.relationName}, line ${line}`;
    return text === undefined ? where : `${where}: "${limitPrintout(text)}"`;
  }

  /** An error found while reading a line (PostgreSQL shows no line text then). */
  protected lineError(line: number, message: string, hint?: string, code: string = BAD_COPY_FILE_FORMAT): CopyFormatError {
    return new CopyFormatError(code, message, line, this.contextOf(line), hint);
  }

  /** An error about the fields of a complete line (the context shows the line). */
  private recordError(line: number, text: string, message: string, code: string = BAD_COPY_FILE_FORMAT): CopyFormatError {
    return new CopyFormatError(code, message, line, this.contextOf(line, text));
  }

  protected withLine(e: SqlError, line: number): CopyFormatError {
    return e instanceof CopyFormatError ? e : this.lineError(line, e.message, e.hint, e.code);
  }

  private columnName(i: number): string {
    return this.fmt.columnNames?.[i] ?? `column ${i + 1}`;
  }

  // ---- records ----

  /** A complete line was split into `nf` fields (the first ncols of them in `row`). */
  private endRecord(s: string, recStart: number, lineEnd: number, ln: number, row: CopyRow, nf: number): void {
    this.lineNo = ln;
    const err = this.fieldError;
    this.fieldError = null;
    const ncols = this.ncols;
    if (this.headerPending) {
      this.headerPending = false;
      if (this.fmt.header === 'match') {
        if (ncols === 0) {
          if (lineEnd > recStart) throw this.recordError(ln, s.slice(recStart, lineEnd), 'extra data after last expected column');
          return;
        }
        if (err !== null) throw this.recordError(ln, s.slice(recStart, lineEnd), err.message, err.code);
        this.matchHeader(row, nf, ln, s.slice(recStart, lineEnd));
      }
      return;
    }
    if (ncols === 0) {
      // PostgreSQL does not even split the line then.
      if (lineEnd > recStart) throw this.recordError(ln, s.slice(recStart, lineEnd), 'extra data after last expected column');
      this.out.push([]);
      this.outLines.push(ln);
      this.rows++;
      return;
    }
    if (err !== null) throw this.recordError(ln, s.slice(recStart, lineEnd), err.message, err.code);
    if (nf > ncols) throw this.recordError(ln, s.slice(recStart, lineEnd), 'extra data after last expected column');
    if (nf < ncols) {
      throw this.recordError(ln, s.slice(recStart, lineEnd), `missing data for column "${this.columnName(nf)}"`);
    }
    this.out.push(row);
    this.outLines.push(ln);
    this.rows++;
  }

  private matchHeader(row: CopyRow, nf: number, ln: number, text: string): void {
    const ncols = this.ncols;
    if (nf !== ncols) {
      throw this.recordError(ln, text, `wrong number of fields in header line: got ${nf}, expected ${ncols}`);
    }
    for (let k = 0; k < ncols; k++) {
      const name = this.columnName(k);
      const got = row[k];
      if (got === null || got === undefined) {
        throw this.recordError(
          ln,
          text,
          `column name mismatch in header line field ${k + 1}: got null value ("${this.nullString}"), expected "${name}"`,
        );
      }
      if (got !== name) {
        throw this.recordError(ln, text, `column name mismatch in header line field ${k + 1}: got "${got}", expected "${name}"`);
      }
    }
  }

  /** End of data while the header line is still expected: HEADER MATCH checks an empty line. */
  protected headerAtEnd(ln: number): void {
    if (!this.headerPending) return;
    this.headerPending = false;
    if (this.fmt.header !== 'match') return;
    if (this.ncols === 0) return;
    this.matchHeader([this.nullLength === 0 ? null : ''], 1, ln, '');
  }

  /** Reached the end-of-copy marker: no more rows. */
  private endOfData(ln: number): void {
    this.lineNo = ln;
    this.finished = true;
    this.headerAtEnd(ln);
  }

  /**
   * Parses the records of s from pos. Returns the index where an unfinished
   * record starts (s.length when there is none). With `final`, the end of s
   * is the end of the data.
   */
  protected parse(s: string, pos: number, final: boolean): number {
    return this.fmt.csv ? this.parseCsv(s, pos, final) : this.parseText(s, pos, final);
  }

  // ---- text format ----

  private textValue(s: string, fs: number, fe: number, esc: boolean): string | null {
    if (fe - fs === this.nullLength && s.startsWith(this.nullString, fs)) return null;
    if (!esc) return s.slice(fs, fe);
    const r = deEscapeText(s, fs, fe);
    if (typeof r === 'string') return r;
    if (this.fieldError === null) this.fieldError = r;
    return '';
  }

  /**
   * At a backslash-dot at i (CopyReadLineText): returns the index after the
   * marker's newline, -1 when more data is needed, or throws.
   */
  private endMarker(s: string, i: number, recStart: number, final: boolean, ln: number): number {
    const n = s.length;
    const eol = this.eol;
    let j = i + 2;
    let d: number;
    if (eol === EOL_CRNL) {
      if (j >= n) {
        if (!final) return -1;
        d = 0;
      } else d = s.charCodeAt(j++);
      if (d === LF) throw this.lineError(ln, 'end-of-copy marker does not match previous newline style');
      if (d !== CR) throw this.lineError(ln, 'end-of-copy marker is not alone on its line');
    }
    if (j >= n) {
      if (!final) return -1;
      d = 0;
    } else d = s.charCodeAt(j++);
    if (d !== CR && d !== LF) throw this.lineError(ln, 'end-of-copy marker is not alone on its line');
    if ((eol === EOL_NL && d !== LF) || (eol === EOL_CRNL && d !== LF) || (eol === EOL_CR && d !== CR)) {
      throw this.lineError(ln, 'end-of-copy marker does not match previous newline style');
    }
    if (i > recStart) throw this.lineError(ln, 'end-of-copy marker is not alone on its line');
    return j;
  }

  private parseText(s: string, pos: number, final: boolean): number {
    const n = s.length;
    const delim = this.fmt.delimiterCode;
    const ncols = this.ncols;
    let i = pos;
    while (i < n) {
      const recStart = i;
      const ln = this.lineNo + 1;
      this.fieldError = null;
      const row: CopyRow = new Array(ncols);
      let nf = 0;
      let fs = i; // field start
      let esc = false; // the field has a backslash
      let fe: number; // raw end of the last field
      let lineEnd: number;
      let next: number;
      for (;;) {
        if (i >= n) {
          if (!final) return recStart;
          fe = lineEnd = next = n; // last line without a newline
          break;
        }
        const c = s.charCodeAt(i);
        if (c === delim) {
          const v = this.textValue(s, fs, i, esc);
          if (nf < ncols) row[nf] = v;
          nf++;
          fs = ++i;
          esc = false;
          continue;
        }
        if (c > CR && c !== BS) {
          i++;
          continue;
        }
        if (c === BS) {
          if (i + 1 >= n) {
            if (!final) return recStart;
            // A backslash just before the end of data belongs to the line but not to the field.
            fe = i;
            lineEnd = next = n;
            break;
          }
          const c2 = s.charCodeAt(i + 1);
          if (c2 === DOT) {
            const after = this.endMarker(s, i, recStart, final, ln);
            if (after < 0) return recStart;
            this.endOfData(ln);
            return n;
          }
          esc = true;
          i += 2;
          if (isOctal(c2)) {
            for (let k = 0; k < 2; k++) {
              if (i >= n) {
                if (!final) return recStart;
                break;
              }
              if (!isOctal(s.charCodeAt(i))) break;
              i++;
            }
          } else if (c2 === 120 /* x */) {
            for (let k = 0; k < 2; k++) {
              if (i >= n) {
                if (!final) return recStart;
                break;
              }
              if (hexValue(s.charCodeAt(i)) < 0) break;
              i++;
            }
          }
          continue;
        }
        if (c === LF) {
          if (this.eol === EOL_CR || this.eol === EOL_CRNL) {
            throw this.lineError(ln, 'literal newline found in data', 'Use "\\n" to represent newline.');
          }
          this.eol = EOL_NL;
          fe = lineEnd = i;
          next = i + 1;
          break;
        }
        if (c === CR) {
          const eol = this.eol;
          if (eol === EOL_NL) {
            throw this.lineError(ln, 'literal carriage return found in data', 'Use "\\r" to represent carriage return.');
          }
          if (eol === EOL_CR) {
            next = i + 1;
          } else {
            if (i + 1 >= n && !final) return recStart;
            if (i + 1 < n && s.charCodeAt(i + 1) === LF) {
              this.eol = EOL_CRNL;
              next = i + 2;
            } else {
              if (eol === EOL_CRNL) {
                throw this.lineError(ln, 'literal carriage return found in data', 'Use "\\r" to represent carriage return.');
              }
              this.eol = EOL_CR;
              next = i + 1;
            }
          }
          fe = lineEnd = i;
          break;
        }
        i++; // other control characters
      }
      const v = this.textValue(s, fs, fe, esc);
      if (nf < ncols) row[nf] = v;
      nf++;
      this.endRecord(s, recStart, lineEnd, ln, row, nf);
      i = next;
    }
    return i;
  }

  // ---- csv format ----

  /** A `\\.` line at i: 1 = it is the end marker, 0 = it is not, -1 = more data is needed to tell. */
  private csvEndMarkerAt(s: string, i: number, final: boolean): number {
    if (i + 1 >= s.length) return final ? 0 : -1;
    if (s.charCodeAt(i + 1) !== DOT) return 0;
    if (i + 2 >= s.length) return final ? 1 : -1;
    const after = s.charCodeAt(i + 2);
    return after === LF || after === CR ? 1 : 0;
  }

  private parseCsv(s: string, pos: number, final: boolean): number {
    const n = s.length;
    const delim = this.fmt.delimiterCode;
    const quote = this.fmt.quoteCode;
    const escape = this.fmt.escapeCode;
    const maxSpecial = Math.max(delim, quote, LF, CR);
    const nullString = this.nullString;
    const nullLength = this.nullLength;
    const forceNull = this.fmt.forceNull;
    const forceNotNull = this.fmt.forceNotNull;
    const forceAny = forceNull !== null || forceNotNull !== null;
    const ncols = this.ncols;
    let i = pos;
    while (i < n) {
      const recStart = i;
      let ln = this.lineNo + 1;
      if (this.fmt.csvEndMarker && s.charCodeAt(i) === BS) {
        const marker = this.csvEndMarkerAt(s, i, final);
        if (marker === -1) return recStart;
        if (marker === 1) {
          this.endOfData(ln);
          return n;
        }
      }
      this.fieldError = null;
      const forcing = forceAny && !this.headerPending; // never on a header line
      // PostgreSQL counts newlines inside quotes as lines, judging by the
      // newline style known so far (a CR while it is still unknown).
      const nlChar = this.eol === EOL_NL ? LF : CR;
      const row: CopyRow = new Array(ncols);
      let nf = 0;
      let fs = i; // field start
      let acc: string | null = null; // value so far, once the field has a quote
      let run = i; // start of the literal run not yet in acc
      let lineEnd: number;
      let next: number;
      record: for (;;) {
        if (i >= n) {
          if (!final) return recStart;
          lineEnd = next = n;
          break;
        }
        const c = s.charCodeAt(i);
        if (c > maxSpecial) {
          i++;
          continue;
        }
        if (c === delim) {
          let v: string | null;
          if (acc === null) v = i - fs === nullLength && s.startsWith(nullString, fs) ? null : s.slice(fs, i);
          else v = acc + s.slice(run, i);
          if (nf < ncols) {
            if (forcing) {
              if (v === null) {
                if (forceNotNull !== null && forceNotNull[nf]) v = nullString;
              } else if (forceNull !== null && forceNull[nf] && v === nullString) v = null;
            }
            row[nf] = v;
          }
          nf++;
          fs = run = ++i;
          acc = null;
          continue;
        }
        if (c === quote) {
          acc = acc === null ? s.slice(fs, i) : acc + s.slice(run, i);
          run = ++i;
          for (;;) {
            if (i >= n) {
              if (!final) return recStart;
              // The data ended inside quotes.
              if (this.fieldError === null) this.fieldError = new SqlError(BAD_COPY_FILE_FORMAT, 'unterminated CSV quoted field');
              lineEnd = next = n;
              break record;
            }
            const d = s.charCodeAt(i);
            if (d === escape) {
              if (i + 1 < n) {
                const d2 = s.charCodeAt(i + 1);
                if (d2 === escape || d2 === quote) {
                  acc += s.slice(run, i) + s[i + 1];
                  i += 2;
                  run = i;
                  continue;
                }
              } else if (!final) return recStart;
            }
            if (d === quote) {
              acc += s.slice(run, i);
              run = ++i;
              break;
            }
            if (d === nlChar) ln++;
            i++;
          }
          continue;
        }
        if (c === LF) {
          if (this.eol === EOL_CR || this.eol === EOL_CRNL) {
            throw this.lineError(ln, 'unquoted newline found in data', 'Use quoted CSV field to represent newline.');
          }
          this.eol = EOL_NL;
          lineEnd = i;
          next = i + 1;
          break;
        }
        if (c === CR) {
          const eol = this.eol;
          if (eol === EOL_NL) {
            throw this.lineError(ln, 'unquoted carriage return found in data', 'Use quoted CSV field to represent carriage return.');
          }
          if (eol === EOL_CR) {
            next = i + 1;
          } else {
            if (i + 1 >= n && !final) return recStart;
            if (i + 1 < n && s.charCodeAt(i + 1) === LF) {
              this.eol = EOL_CRNL;
              next = i + 2;
            } else {
              if (eol === EOL_CRNL) {
                throw this.lineError(
                  ln,
                  'unquoted carriage return found in data',
                  'Use quoted CSV field to represent carriage return.',
                );
              }
              this.eol = EOL_CR;
              next = i + 1;
            }
          }
          lineEnd = i;
          break;
        }
        i++;
      }
      let v: string | null;
      if (acc === null) v = lineEnd - fs === nullLength && s.startsWith(nullString, fs) ? null : s.slice(fs, lineEnd);
      else v = acc + s.slice(run, lineEnd);
      if (nf < ncols) {
        if (forcing) {
          if (v === null) {
            if (forceNotNull !== null && forceNotNull[nf]) v = nullString;
          } else if (forceNull !== null && forceNull[nf] && v === nullString) v = null;
        }
        row[nf] = v;
      }
      nf++;
      this.endRecord(s, recStart, lineEnd, ln, row, nf);
      i = next;
    }
    return i;
  }

  // ---- unfinished records (used by the streaming decoder) ----

  private scanEsc = false;
  private scanInQuote = false;
  private scanLastEsc = false;

  protected resetScan(): void {
    this.scanEsc = false;
    this.scanInQuote = false;
    this.scanLastEsc = false;
  }

  /**
   * Resumable scan over more text of an unfinished record (CopyReadLineText's
   * line splitting): true once something that can end the record (or be an
   * error there) has arrived, so that parsing again can make progress.
   */
  protected scanMore(t: string): boolean {
    const n = t.length;
    if (!this.fmt.csv) {
      let esc = this.scanEsc;
      for (let i = 0; i < n; i++) {
        const c = t.charCodeAt(i);
        if (esc) {
          esc = false;
          if (c === DOT) return true;
        } else if (c === BS) esc = true;
        else if (c === LF || c === CR) return true;
      }
      this.scanEsc = esc;
      return false;
    }
    const quote = this.fmt.quoteCode;
    const escape = this.fmt.escapeCode === quote ? -1 : this.fmt.escapeCode;
    let inQuote = this.scanInQuote;
    let lastEsc = this.scanLastEsc;
    for (let i = 0; i < n; i++) {
      const c = t.charCodeAt(i);
      if (inQuote && c === escape) lastEsc = !lastEsc;
      if (c === quote && !lastEsc) inQuote = !inQuote;
      if (c !== escape) lastEsc = false;
      if (!inQuote && (c === LF || c === CR)) return true;
    }
    this.scanInQuote = inQuote;
    this.scanLastEsc = lastEsc;
    return false;
  }

  /** PostgreSQL's line number while in the middle of reading the unfinished record `t`. */
  protected partialLineNumber(t: string): number {
    let ln = this.lineNo + 1;
    if (!this.fmt.csv) return ln;
    const quote = this.fmt.quoteCode;
    const escape = this.fmt.escapeCode === quote ? -1 : this.fmt.escapeCode;
    const nlChar = this.eol === EOL_NL ? LF : CR;
    let inQuote = false;
    let lastEsc = false;
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (inQuote && c === escape) lastEsc = !lastEsc;
      if (c === quote && !lastEsc) inQuote = !inQuote;
      if (c !== escape) lastEsc = false;
      if (inQuote && c === nlChar) ln++;
    }
    return ln;
  }
}

/**
 * Streaming decoder for COPY FROM STDIN data.
 *
 * `push` takes chunks cut anywhere (inside rows, fields, escapes or UTF-8
 * characters) and calls `onRows` once per push with the rows completed by it
 * (never with an empty batch). Each row is an array of exactly `columnCount`
 * fields, each a string or null. `end` flushes a last line without newline.
 * Data after the end-of-copy marker (text format `\.` line) is ignored, as
 * PostgreSQL does.
 *
 * Errors are thrown from `push`/`end` as CopyFormatError (SqlError with
 * PostgreSQL's SQLSTATE and message, the line in `detail`), after the rows
 * completed before the bad line have been handed to `onRows`. After an error
 * the decoder only rethrows it.
 */
export class CopyDecoder extends CopyParser {
  private readonly onRows: (rows: CopyRow[], lines: number[]) => void;
  private readonly utf8 = new Utf8StreamDecoder();
  private tail: string[] = [];
  private tailLength = 0;
  private mustParse = false;
  private failure: unknown = null;

  constructor(columnCount: number, options: CopyFormatOptions | CompiledCopyFormat, onRows: (rows: CopyRow[], lines: number[]) => void) {
    super(columnCount, options);
    this.onRows = onRows;
  }

  /** Rows decoded so far (the header line not counted). */
  get rowCount(): number {
    return this.rows;
  }

  /** PostgreSQL's line number of the last line read so far. */
  get lineNumber(): number {
    return this.lineNo;
  }

  /** True once the end-of-copy marker was seen or `end` was called. */
  get ended(): boolean {
    return this.finished;
  }

  push(chunk: Uint8Array): void {
    if (this.failure !== null) throw this.failure;
    if (this.finished || chunk.length === 0) return;
    try {
      const text = this.utf8.decode(chunk);
      if (text.length > 0) this.feed(text);
      const bad = this.utf8.error;
      if (bad !== null && !this.finished) throw this.withLine(bad, this.partialLineNumber(this.tailText()));
    } catch (e) {
      this.fail(e);
    }
    this.flush();
  }

  end(): void {
    if (this.failure !== null) throw this.failure;
    if (this.finished) return;
    try {
      const bad = this.utf8.finish();
      if (bad !== null) throw this.withLine(bad, this.partialLineNumber(this.tailText()));
      const s = this.tailText();
      this.tail = [];
      this.tailLength = 0;
      this.parse(s, 0, true);
      if (!this.finished) {
        this.finished = true;
        this.headerAtEnd(this.lineNo + 1);
      }
    } catch (e) {
      this.fail(e);
    }
    this.flush();
  }

  private fail(e: unknown): never {
    this.failure = e;
    this.finished = true;
    this.tail = [];
    this.tailLength = 0;
    this.flush();
    throw e;
  }

  private flush(): void {
    if (this.out.length > 0) {
      const rows = this.out;
      const lines = this.outLines;
      this.out = [];
      this.outLines = [];
      this.onRows(rows, lines);
    }
  }

  private tailText(): string {
    if (this.tail.length > 1) this.tail = [this.tail.join('')];
    return this.tail.length === 0 ? '' : this.tail[0]!;
  }

  private feed(text: string): void {
    let s: string;
    if (this.tailLength > 0) {
      this.tail.push(text);
      this.tailLength += text.length;
      if (!this.mustParse && !this.scanMore(text)) return;
      s = this.tailText();
      this.tail = [];
      this.tailLength = 0;
    } else {
      s = text;
    }
    const pos = this.parse(s, 0, false);
    if (pos < s.length && !this.finished) {
      const rest = pos === 0 ? s : s.slice(pos);
      this.tail = [rest];
      this.tailLength = rest.length;
      this.resetScan();
      this.mustParse = this.scanMore(rest);
    }
  }
}

/**
 * Decodes single messages (e.g. Kafka messages in PipelineDB's 'text' / 'csv'
 * formats), each on its own: no state is carried from one message to the
 * next. Reuse one instance per stream: options are checked once.
 */
export class CopyLineDecoder extends CopyParser {
  constructor(columnCount: number, options: CopyFormatOptions | CompiledCopyFormat) {
    super(columnCount, options);
  }

  /** All rows of one message (PipelineDB fed each message through COPY, so a message may hold several). */
  decodeAll(data: string | Uint8Array): CopyRow[] {
    this.resetState();
    let s: string;
    if (typeof data === 'string') {
      const nul = data.indexOf('\0');
      if (nul >= 0) {
        this.parse(data.slice(0, nul), 0, false);
        throw this.lineError(this.lineNo + 1, 'invalid byte sequence for encoding "UTF8": 0x00', undefined, CHARACTER_NOT_IN_REPERTOIRE);
      }
      s = data;
    } else {
      const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (isPgUtf8(b)) s = b.toString('utf8');
      else {
        const bad = findInvalidUtf8(b);
        this.parse(b.toString('utf8', 0, bad), 0, false);
        throw this.withLine(invalidByteSequence(b, bad), this.lineNo + 1);
      }
    }
    this.parse(s, 0, true);
    if (!this.finished) this.headerAtEnd(this.lineNo + 1);
    const rows = this.out;
    this.out = [];
    this.outLines = [];
    return rows;
  }

  /**
   * The single row of a message (a trailing newline is allowed); null when
   * the message holds no row (empty, or only the end-of-copy marker). More
   * than one row is an error.
   */
  decode(data: string | Uint8Array): CopyRow | null {
    const rows = this.decodeAll(data);
    if (rows.length > 1) {
      throw new CopyFormatError(BAD_COPY_FILE_FORMAT, 'message holds more than one row', 2, this.contextOf(2));
    }
    return rows.length === 0 ? null : rows[0]!;
  }
}

const lineDecoders = new WeakMap<object, Map<number, CopyLineDecoder>>();

/**
 * One message = one row. `columnCount` defaults to `options.columnNames.length`.
 * Decoders are cached per options object, so pass the same object each time.
 */
export function decodeLine(
  line: string | Uint8Array,
  options: CopyFormatOptions & { columnCount?: number },
): CopyRow | null {
  return lineDecoderFor(options).decode(line);
}

/** All rows of a complete piece of COPY data (no streaming). */
export function decodeAll(data: string | Uint8Array, options: CopyFormatOptions & { columnCount?: number }): CopyRow[] {
  return lineDecoderFor(options).decodeAll(data);
}

function lineDecoderFor(options: CopyFormatOptions & { columnCount?: number }): CopyLineDecoder {
  const columnCount = options.columnCount ?? options.columnNames?.length;
  if (columnCount === undefined) throw new RangeError('decodeLine needs options.columnCount or options.columnNames');
  let byCount = lineDecoders.get(options);
  if (byCount === undefined) {
    byCount = new Map();
    lineDecoders.set(options, byCount);
  }
  let d = byCount.get(columnCount);
  if (d === undefined) {
    d = new CopyLineDecoder(columnCount, options);
    byCount.set(columnCount, d);
  }
  return d;
}
