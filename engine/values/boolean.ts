/**
 * boolin: after trimming C whitespace, a case-insensitive prefix of
 * true / false / yes / no, at least "on" or "of" for on / off (a lone 'o'
 * is ambiguous), or exactly "1" / "0".
 */
import * as chars from './chars.ts';
import { invalidSyntax } from './pg-errors.ts';

// Hot-path helpers and character codes are module-local on purpose: tsx (and
// vitest) compile an imported binding into a getter call at every use, which
// costs more than the parsing itself in a per-character loop.
const { isCSpace } = chars;
const CH_0 = 48;
const CH_1 = 49;
/** OR-ing an ASCII letter with this folds it to lower case. */
const LOWER_BIT = 32;

export function parseBool(text: string): boolean {
  let start = 0;
  let end = text.length;
  while (start < end && isCSpace(text.charCodeAt(start))) start++;
  while (end > start && isCSpace(text.charCodeAt(end - 1))) end--;
  const length = end - start;
  if (length > 0) {
    const first = text.charCodeAt(start);
    switch (first | LOWER_BIT) {
      case 116: // t
        if (isPrefixOf(text, start, length, 'true')) return true;
        break;
      case 102: // f
        if (isPrefixOf(text, start, length, 'false')) return false;
        break;
      case 121: // y
        if (isPrefixOf(text, start, length, 'yes')) return true;
        break;
      case 110: // n
        if (isPrefixOf(text, start, length, 'no')) return false;
        break;
      case 111: // o
        if (length >= 2 && isPrefixOf(text, start, length, 'on')) return true;
        if (length >= 2 && isPrefixOf(text, start, length, 'off')) return false;
        break;
    }
    // '1' | 0x20 is still '1', so the digits are checked on the raw char.
    if (length === 1 && first === CH_1) return true;
    if (length === 1 && first === CH_0) return false;
  }
  throw invalidSyntax('boolean', text);
}

/** Whether text[start, start+length) is a case-insensitive prefix of the lower-case `word`. */
function isPrefixOf(text: string, start: number, length: number, word: string): boolean {
  if (length > word.length) return false;
  for (let k = 0; k < length; k++) {
    if ((text.charCodeAt(start + k) | LOWER_BIT) !== word.charCodeAt(k)) return false;
  }
  return true;
}
