/**
 * timestamp and timestamptz for compiled expressions, as microseconds since
 * 1970-01-01 00:00 (UTC for timestamptz). The engine reads the ISO 8601
 * forms producers send (`2026-01-05T10:00:00.123Z`, `2026-01-05 10:00:00+01:00`);
 * any other spelling, and a timestamptz without an explicit offset (which
 * PostgreSQL reads in the session's time zone), goes to the store.
 */
import { NeedsStore } from './needs-store.ts';

const iso = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Microseconds a double holds exactly (beyond, the store takes over). */
const exactMicros = 2 ** 53;

function parse(text: string, withZone: boolean): number {
  const m = iso.exec(text.trim());
  if (!m) throw new NeedsStore('a timestamp spelling the engine does not read');
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    // PostgreSQL's own message (or its reading of 24:00:00 and leap seconds) comes from the store.
    throw new NeedsStore('a timestamp out of the engine\'s plain range');
  }
  let micros = utcMillis(year, month - 1, day, hour, minute, second) * 1000 + Number(frac.padEnd(6, '0'));
  if (withZone) {
    if (!zone) throw new NeedsStore('a timestamptz without an offset is read in the session time zone');
    micros -= zoneOffsetMicros(zone);
  }
  if (Math.abs(micros) > exactMicros) throw new NeedsStore('a timestamp far from 1970');
  return micros;
}

/** Milliseconds since 1970 of a UTC date and time (Date.UTC would read years 0–99 as 1900–1999). */
function utcMillis(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}

function zoneOffsetMicros(zone: string): number {
  if (zone === 'Z' || zone === 'z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2) || '0');
  if (hours > 15 || minutes > 59) throw new NeedsStore('an unusual time zone offset');
  return sign * (hours * 60 + minutes) * 60_000_000;
}

function daysInMonth(year: number, month: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, 0);
  return d.getUTCDate();
}

export const parseTimestamptz = (text: string): number => parse(text, true);
export const parseTimestamp = (text: string): number => parse(text, false);

/** As PostgreSQL prints it with DateStyle ISO (timestamptz in UTC: the store's zone when the engine compiles for it). */
export function formatTimestamp(micros: number, withZone: boolean): string {
  const ms = Math.floor(micros / 1000);
  const us = micros - ms * 1000;
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) throw new NeedsStore('a timestamp outside years 1–9999');
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const fraction = date.getUTCMilliseconds() * 1000 + us;
  const seconds = fraction ? `${pad(date.getUTCSeconds())}.${String(fraction).padStart(6, '0').replace(/0+$/, '')}` : pad(date.getUTCSeconds());
  return `${pad(year, 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${seconds}${withZone ? '+00' : ''}`;
}

/** date_trunc's units that do not depend on the time zone (whole-minute offsets), for timestamptz. */
export const zoneFreeUnits = new Set(['microseconds', 'milliseconds', 'second', 'minute']);

const units = new Set(['microseconds', 'milliseconds', 'second', 'minute', 'hour', 'day', 'week', 'month', 'quarter', 'year', 'decade', 'century', 'millennium']);

export function isDateTruncUnit(unit: string): boolean {
  return units.has(unit);
}

/** date_trunc(unit, ts) on the UTC calendar (the value's own for timestamp). */
export function dateTrunc(unit: string, micros: number): number {
  const fixed: Record<string, number> = { microseconds: 1, milliseconds: 1000, second: 1_000_000, minute: 60_000_000, hour: 3_600_000_000, day: 86_400_000_000 };
  const step = fixed[unit];
  if (step) return Math.floor(micros / step) * step;
  const d = new Date(Math.floor(micros / 86_400_000_000) * 86_400_000);
  const year = d.getUTCFullYear();
  let month = d.getUTCMonth();
  let day = d.getUTCDate();
  let truncatedYear = year;
  switch (unit) {
    case 'week': {
      // ISO weeks start on Monday.
      const back = (d.getUTCDay() + 6) % 7;
      return (d.getTime() - back * 86_400_000) * 1000;
    }
    case 'month':
      day = 1;
      break;
    case 'quarter':
      month -= month % 3;
      day = 1;
      break;
    case 'year':
      month = 0;
      day = 1;
      break;
    case 'decade':
      truncatedYear = year - (year % 10);
      month = 0;
      day = 1;
      break;
    case 'century':
      truncatedYear = year - ((year - 1) % 100);
      month = 0;
      day = 1;
      break;
    case 'millennium':
      truncatedYear = year - ((year - 1) % 1000);
      month = 0;
      day = 1;
      break;
  }
  return utcMillis(truncatedYear, month, day) * 1000;
}

const intervalUnits: Record<string, number> = {
  microsecond: 1, microseconds: 1, us: 1, usec: 1, usecs: 1,
  millisecond: 1000, milliseconds: 1000, ms: 1000, msec: 1000, msecs: 1000,
  second: 1_000_000, seconds: 1_000_000, sec: 1_000_000, secs: 1_000_000, s: 1_000_000,
  minute: 60_000_000, minutes: 60_000_000, min: 60_000_000, mins: 60_000_000, m: 60_000_000,
  hour: 3_600_000_000, hours: 3_600_000_000, hr: 3_600_000_000, hrs: 3_600_000_000, h: 3_600_000_000,
  day: 86_400_000_000, days: 86_400_000_000, d: 86_400_000_000,
};

/**
 * An interval constant of fixed length ('5 minutes', '1 hour 30 minutes',
 * '00:05:00', '1 day'), as { micros, days }: days apart, since adding a day
 * to a timestamptz follows the session's time zone. Undefined for anything
 * else (months, years, ISO 8601 forms, signs): the store evaluates those.
 */
export function fixedInterval(text: string): { micros: number; days: number } | undefined {
  let micros = 0;
  let days = 0;
  let rest = text.trim().toLowerCase();
  if (rest === '') return undefined;
  while (rest !== '') {
    const clock = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:\s+|$)/.exec(rest);
    if (clock) {
      micros += ((Number(clock[1]) * 60 + Number(clock[2])) * 60 + Number(clock[3] ?? 0)) * 1_000_000 + Number((clock[4] ?? '').padEnd(6, '0'));
      rest = rest.slice(clock[0].length);
      continue;
    }
    const term = /^(\d+(?:\.\d+)?)\s*([a-z]+)(?:\s+|$)/.exec(rest);
    const unit = term && intervalUnits[term[2]];
    if (!term || !unit) return undefined;
    if (unit === 86_400_000_000) {
      if (!Number.isInteger(Number(term[1]))) return undefined;
      days += Number(term[1]);
    } else {
      const value = Number(term[1]) * unit;
      if (!Number.isInteger(value)) return undefined;
      micros += value;
    }
    rest = rest.slice(term[0].length);
  }
  return { micros, days };
}

/** date_bin(stride, ts, origin): the start of ts's bin (strides of fixed length only). */
export function dateBin(stride: number, micros: number, origin: number): number {
  return origin + Math.floor((micros - origin) / stride) * stride;
}
