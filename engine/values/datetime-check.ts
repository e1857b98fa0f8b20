/**
 * A fast, conservative check for the ISO 8601 timestamps and dates that
 * nearly every producer sends: true means PostgreSQL's input function
 * certainly accepts the text; false means "ask PostgreSQL" (it may still be
 * valid in one of the many other spellings PostgreSQL reads).
 */
const isoTimestamp = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/;
const isoDate = /^(\d{4})-(\d{2})-(\d{2})$/;

const dateTypes = new Set(['timestamptz', 'timestamp', 'timestamp with time zone', 'timestamp without time zone']);

export function certainlyValidDateTime(typeName: string, text: string): boolean {
  const timestamp = dateTypes.has(typeName);
  if (!timestamp && typeName !== 'date') return false;
  const match = (timestamp ? isoTimestamp : isoDate).exec(text);
  if (!match) return false;
  const [, y, mo, d, h, mi, s] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (h !== undefined && (Number(h) > 23 || Number(mi) > 59 || (s !== undefined && Number(s) > 59))) return false;
  return true;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
