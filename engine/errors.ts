/**
 * The one error class of Sluice. Every failure a client can see carries a
 * PostgreSQL SQLSTATE so the wire layer can send a faithful ErrorResponse.
 */
export interface SqlErrorFields {
  detail?: string;
  hint?: string;
  /** 1-based character position in the statement text, as PostgreSQL reports it. */
  position?: number;
  /** Set when the error came from a statement Sluice generated; `position` then points into it. */
  internalQuery?: string;
  severity?: 'ERROR' | 'FATAL' | 'PANIC';
}

export class SqlError extends Error {
  readonly code: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: number;
  readonly internalQuery?: string;
  readonly severity: 'ERROR' | 'FATAL' | 'PANIC';

  constructor(code: string, message: string, fields: SqlErrorFields = {}) {
    super(message);
    this.name = 'SqlError';
    this.code = code;
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.position = fields.position;
    this.internalQuery = fields.internalQuery;
    this.severity = fields.severity ?? 'ERROR';
  }
}

/** SQLSTATE codes Sluice raises itself (the serving store raises its own). */
export const SqlState = {
  featureNotSupported: '0A000',
  syntaxError: '42601',
  undefinedColumn: '42703',
  undefinedTable: '42P01',
  undefinedObject: '42704',
  duplicateTable: '42P07',
  duplicateObject: '42710',
  wrongObjectType: '42809',
  invalidParameterValue: '22023',
  datetimeFieldOverflow: '22008',
  programLimitExceeded: '54000',
  invalidTextRepresentation: '22P02',
  numericValueOutOfRange: '22003',
  divisionByZero: '22012',
  substringError: '22011',
  invalidEscapeSequence: '22025',
  invalidArgumentForPowerFunction: '2201F',
  stringDataRightTruncation: '22001',
  badCopyFileFormat: '22P04',
  dependentObjectsStillExist: '2BP01',
  protocolViolation: '08P01',
  invalidSqlStatementName: '26000',
  invalidCursorName: '34000',
  queryCanceled: '57014',
  adminShutdown: '57P01',
  internalError: 'XX000',
  invalidColumnReference: '42P10',
  groupingError: '42803',
  datatypeMismatch: '42804',
  cardinalityViolation: '21000',
  undefinedFunction: '42883',
  nullValueNotAllowed: '22004',
  activeSqlTransaction: '25001',
  connectionFailure: '08006',
  objectNotInPrerequisiteState: '55000',
  configurationLimitExceeded: '53400',
  noActiveSqlTransaction: '25P01',
  duplicateCursor: '42P03',
} as const;

export function notSupported(what: string, hint?: string): SqlError {
  return new SqlError(SqlState.featureNotSupported, `${what} is not supported`, { hint });
}
