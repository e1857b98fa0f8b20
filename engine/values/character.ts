/**
 * text, varchar(n), char(n) (bpchar) and name input. Lengths are counted in
 * characters (code points), as PostgreSQL counts them in UTF-8.
 */
import * as chars from './chars.ts';
import { containsNul, nulByteError, valueTooLong } from './pg-errors.ts';

// Hot-path helpers and character codes are module-local on purpose: tsx (and
// vitest) compile an imported binding into a getter call at every use, which
// costs more than the parsing itself in a per-character loop.
const { countCodePoints, indexAfterCodePoints, wellFormed } = chars;
const CH_SPACE = 32;

/** textin: any text PostgreSQL can receive, i.e. without NUL; lone surrogates arrive as U+FFFD. */
export function parseText(text: string): string {
  if (containsNul(text)) throw nulByteError();
  return wellFormed(text);
}

/**
 * varcharin with a length limit: longer input is an error unless everything
 * past the limit is spaces, which are then cut off.
 */
export function varcharInput(maxLength: number): (text: string) => string {
  return (text) => {
    const value = parseText(text);
    // UTF-16 length bounds the character count from above.
    if (value.length <= maxLength) return value;
    return clipTrailingSpaces(value, maxLength, 'character varying');
  };
}

/** bpcharin with a length: like varchar, and shorter input is padded with spaces to the length. */
export function bpcharInput(length: number): (text: string) => string {
  return (text) => {
    const value = parseText(text);
    const characters = countCodePoints(value, 0, value.length);
    if (characters > length) return clipTrailingSpaces(value, length, 'character');
    return characters === length ? value : value + ' '.repeat(length - characters);
  };
}

function clipTrailingSpaces(value: string, maxLength: number, sqlTypeName: string): string {
  const cut = indexAfterCodePoints(value, maxLength);
  for (let i = cut; i < value.length; i++) {
    if (value.charCodeAt(i) !== CH_SPACE) throw valueTooLong(sqlTypeName, maxLength);
  }
  return cut === value.length ? value : value.slice(0, cut);
}

/** NAMEDATALEN - 1: names keep at most 63 bytes of UTF-8. */
const MAX_NAME_BYTES = 63;

/** namein: silently truncated to 63 bytes, never splitting a character. */
export function parseName(text: string): string {
  const value = parseText(text);
  // Three UTF-8 bytes per UTF-16 unit at most, so short names need no counting.
  if (value.length * 3 <= MAX_NAME_BYTES) return value;
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const isPair = c >= 0xd800 && c <= 0xdbff; // well-formed: a high surrogate always has its pair
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : isPair ? 4 : 3;
    if (bytes + size > MAX_NAME_BYTES) return value.slice(0, i);
    bytes += size;
    if (isPair) i++;
  }
  return value;
}
