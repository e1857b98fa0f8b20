/**
 * The errors PostgreSQL's input functions raise, with their exact message
 * text. Every constructor first checks for a NUL character: PostgreSQL never
 * sees such a value because it is rejected while the text is verified as
 * UTF-8, before any input function runs. Doing the check here keeps it off
 * the success path, where the parsers reject NUL as an ordinary bad character.
 */
import { SqlError, SqlState } from '../errors.ts';
import { wellFormed } from './chars.ts';

/** SQLSTATE 22021; not in SqlState because only the value layer raises it. */
export const CHARACTER_NOT_IN_REPERTOIRE = '22021';

export function containsNul(text: string): boolean {
  return text.indexOf('\u0000') !== -1;
}

export function nulByteError(): SqlError {
  return new SqlError(CHARACTER_NOT_IN_REPERTOIRE, 'invalid byte sequence for encoding "UTF8": 0x00');
}

/** `invalid input syntax for type integer: "abc"`, quoting the whole original text. */
export function invalidSyntax(sqlTypeName: string, text: string): SqlError {
  if (containsNul(text)) return nulByteError();
  return new SqlError(
    SqlState.invalidTextRepresentation,
    `invalid input syntax for type ${sqlTypeName}: "${wellFormed(text)}"`,
  );
}

/** The integer types' wording: `value "99999999999" is out of range for type integer`. */
export function integerOutOfRange(sqlTypeName: string, text: string): SqlError {
  if (containsNul(text)) return nulByteError();
  return new SqlError(
    SqlState.numericValueOutOfRange,
    `value "${wellFormed(text)}" is out of range for type ${sqlTypeName}`,
  );
}

/**
 * The float types' wording, which quotes only the number strtod consumed
 * (`"1e400" is out of range for type double precision`), not the whole text.
 */
export function floatOutOfRange(sqlTypeName: string, text: string, numberText: string): SqlError {
  if (containsNul(text)) return nulByteError();
  return new SqlError(
    SqlState.numericValueOutOfRange,
    `"${wellFormed(numberText)}" is out of range for type ${sqlTypeName}`,
  );
}

/** numeric's storage-format limit (weight or display scale too large). */
export function numericFormatOverflow(text?: string): SqlError {
  if (text !== undefined && containsNul(text)) return nulByteError();
  return new SqlError(SqlState.numericValueOutOfRange, 'value overflows numeric format');
}

/** numeric(p,s) cannot hold the value; detail text as apply_typmod words it. */
export function numericFieldOverflow(precision: number, scale: number): SqlError {
  const maxDigits = precision - scale;
  // PostgreSQL displays 10^0 as 1.
  const limit = maxDigits !== 0 ? `10^${maxDigits}` : '1';
  return new SqlError(SqlState.numericValueOutOfRange, 'numeric field overflow', {
    detail: `A field with precision ${precision}, scale ${scale} must round to an absolute value less than ${limit}.`,
  });
}

export function numericFieldInfinite(precision: number, scale: number): SqlError {
  return new SqlError(SqlState.numericValueOutOfRange, 'numeric field overflow', {
    detail: `A field with precision ${precision}, scale ${scale} cannot hold an infinite value.`,
  });
}

/** varchar(n) / char(n) overflow: `value too long for type character varying(3)`. */
export function valueTooLong(sqlTypeName: string, maxLength: number): SqlError {
  return new SqlError(SqlState.stringDataRightTruncation, `value too long for type ${sqlTypeName}(${maxLength})`);
}
