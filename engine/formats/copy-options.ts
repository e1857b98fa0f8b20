/**
 * Options of COPY FROM in `text` and `csv` format, their PostgreSQL defaults
 * and the checks PostgreSQL's ProcessCopyOptions applies to them (same
 * messages and SQLSTATEs).
 */
import { SqlError, SqlState } from '../errors.ts';

export interface CopyFormatOptions {
  format: 'text' | 'csv';
  /** One single-byte character. Default: tab (text), comma (csv). */
  delimiter?: string;
  /** The string that denotes NULL. Default: `\N` (text), empty string (csv). */
  null?: string;
  /** CSV only; one single-byte character. Default `"`. */
  quote?: string;
  /** CSV only; one single-byte character. Default: the quote character. */
  escape?: string;
  /** Skip the first line (`true`), or check it against `columnNames` (`'match'`). */
  header?: boolean | 'match';
  /** CSV only, per column: a quoted value equal to the NULL string becomes NULL. */
  forceNull?: readonly boolean[];
  /** CSV only, per column: NULL becomes the NULL string itself (i.e. never NULL). */
  forceNotNull?: readonly boolean[];
  /** Column names, for `missing data for column "x"` and HEADER MATCH. */
  columnNames?: readonly string[];
  /** Table name for the error context (`COPY t, line 3: "..."`). */
  relationName?: string;
  /**
   * CSV only: a line `\.` ends the data, as before PostgreSQL 18 (psql up to
   * 17 sends it after CSV data on STDIN).
   */
  csvEndMarker?: boolean;
}

/** Options after defaults and validation, as the decoders use them. */
export interface CompiledCopyFormat {
  readonly csv: boolean;
  readonly delimiter: string;
  readonly delimiterCode: number;
  readonly nullString: string;
  readonly quoteCode: number; // -1 in text mode
  readonly escapeCode: number; // -1 in text mode
  readonly header: false | true | 'match';
  readonly forceNull: readonly boolean[] | null;
  readonly forceNotNull: readonly boolean[] | null;
  readonly columnNames: readonly string[] | null;
  readonly relationName: string | undefined;
  readonly csvEndMarker: boolean;
}

const featureNotSupported = SqlState.featureNotSupported;
const invalidParameterValue = SqlState.invalidParameterValue;

function singleByte(v: string): boolean {
  return v.length === 1 && v.charCodeAt(0) < 0x80;
}

/** Applies PostgreSQL's defaults and checks; throws SqlError with PostgreSQL's messages. */
export function compileCopyOptions(options: CopyFormatOptions): CompiledCopyFormat {
  const csv = options.format === 'csv';
  if (!csv && options.format !== 'text') {
    throw new SqlError(invalidParameterValue, `COPY format "${String(options.format)}" not recognized`);
  }
  const delimiter = options.delimiter ?? (csv ? ',' : '\t');
  const nullString = options.null ?? (csv ? '' : '\\N');

  if (!singleByte(delimiter)) {
    throw new SqlError(featureNotSupported, 'COPY delimiter must be a single one-byte character');
  }
  if (delimiter === '\r' || delimiter === '\n') {
    throw new SqlError(invalidParameterValue, 'COPY delimiter cannot be newline or carriage return');
  }
  if (nullString.includes('\r') || nullString.includes('\n')) {
    throw new SqlError(invalidParameterValue, 'COPY null representation cannot use newline or carriage return');
  }
  if (!csv && '\\.abcdefghijklmnopqrstuvwxyz0123456789'.includes(delimiter)) {
    throw new SqlError(invalidParameterValue, `COPY delimiter cannot be "${delimiter}"`);
  }
  if (!csv && options.quote !== undefined) {
    throw new SqlError(featureNotSupported, 'COPY QUOTE requires CSV mode');
  }
  const quote = options.quote ?? '"';
  if (csv && !singleByte(quote)) {
    throw new SqlError(featureNotSupported, 'COPY quote must be a single one-byte character');
  }
  if (csv && delimiter === quote) {
    throw new SqlError(invalidParameterValue, 'COPY delimiter and quote must be different');
  }
  if (!csv && options.escape !== undefined) {
    throw new SqlError(featureNotSupported, 'COPY ESCAPE requires CSV mode');
  }
  const escape = options.escape ?? quote;
  if (csv && !singleByte(escape)) {
    throw new SqlError(featureNotSupported, 'COPY escape must be a single one-byte character');
  }
  if (!csv && options.forceNotNull?.some(Boolean)) {
    throw new SqlError(featureNotSupported, 'COPY FORCE_NOT_NULL requires CSV mode');
  }
  if (!csv && options.forceNull?.some(Boolean)) {
    throw new SqlError(featureNotSupported, 'COPY FORCE_NULL requires CSV mode');
  }
  if (nullString.includes(delimiter)) {
    throw new SqlError(invalidParameterValue, 'COPY delimiter character must not appear in the NULL specification');
  }
  if (csv && nullString.includes(quote)) {
    throw new SqlError(invalidParameterValue, 'CSV quote character must not appear in the NULL specification');
  }
  const header = options.header === 'match' ? 'match' : options.header === true;
  return {
    csv,
    delimiter,
    delimiterCode: delimiter.charCodeAt(0),
    nullString,
    quoteCode: csv ? quote.charCodeAt(0) : -1,
    escapeCode: csv ? escape.charCodeAt(0) : -1,
    header,
    forceNull: csv && options.forceNull?.some(Boolean) ? options.forceNull : null,
    forceNotNull: csv && options.forceNotNull?.some(Boolean) ? options.forceNotNull : null,
    columnNames: options.columnNames ?? null,
    relationName: options.relationName,
    csvEndMarker: csv && options.csvEndMarker === true,
  };
}
