/**
 * Character-level helpers shared by the input functions. Parsers work on
 * UTF-16 code units with charCodeAt; every test here only recognises ASCII,
 * which is what PostgreSQL's C-locale ctype calls recognise in UTF-8 text.
 */

const CH_TAB = 9;
const CH_SPACE = 32;
const CH_0 = 48;
const CH_9 = 57;
/** OR-ing an ASCII letter with this folds it to lower case. */
const LOWER_BIT = 0x20;

/** C isspace() in the C locale: space, \t, \n, \v, \f, \r. */
export function isCSpace(c: number): boolean {
  return c === CH_SPACE || (c >= CH_TAB && c <= 13);
}

export function isDigit(c: number): boolean {
  return c >= CH_0 && c <= CH_9;
}

export function skipCSpaces(text: string, from: number): number {
  let i = from;
  while (i < text.length && isCSpace(text.charCodeAt(i))) i++;
  return i;
}

/** Value of `c` as a digit in `base` (2, 8, 10 or 16), or -1 if it is not one. */
export function digitValue(c: number, base: number): number {
  let d: number;
  if (c >= CH_0 && c <= CH_9) d = c - CH_0;
  else {
    const lower = c | LOWER_BIT;
    d = lower >= 97 && lower <= 102 ? lower - 87 : -1;
  }
  return d < base ? d : -1;
}

/**
 * Case-insensitive ASCII comparison of text[at .. at+word.length) with the
 * lower-case `word`, like pg_strncasecmp. Running past the end never matches.
 */
export function matchesWordCI(text: string, at: number, word: string): boolean {
  if (at + word.length > text.length) return false;
  for (let k = 0; k < word.length; k++) {
    // Folding with LOWER_BIT is only safe because every `word` char is a letter.
    if ((text.charCodeAt(at + k) | LOWER_BIT) !== word.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * Number of characters PostgreSQL counts in `text[from, to)`: code points,
 * so a surrogate pair is one character.
 */
export function countCodePoints(text: string, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

/** UTF-16 index just past the first `chars` code points of `text`. */
export function indexAfterCodePoints(text: string, chars: number): number {
  let i = 0;
  for (let k = 0; k < chars && i < text.length; k++) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && isLowSurrogateAt(text, i + 1) ? 2 : 1;
  }
  return i;
}

function isLowSurrogateAt(text: string, i: number): boolean {
  if (i >= text.length) return false;
  const c = text.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff;
}

interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/**
 * The string PostgreSQL ends up with once the text has crossed the wire as
 * UTF-8: a lone surrogate cannot be encoded and becomes U+FFFD, exactly as
 * TextEncoder / Buffer.from do it. (String.prototype.isWellFormed is in
 * Node 20 but not in the ES2022 lib typings, hence the cast.)
 */
export function wellFormed(text: string): string {
  const s = text as unknown as WellFormedString;
  return s.isWellFormed() ? text : s.toWellFormed();
}
