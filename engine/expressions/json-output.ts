/**
 * Rows as PostgreSQL's to_json prints them (column names as keys, no
 * spaces), for messages the engine renders itself. timestamptz prints in
 * UTC: callers render it only when the store's session time zone is UTC.
 */
import type { NonNullValue, Value } from '../values/index.ts';
import type { ExprType } from './expr.ts';
import { float8Text } from './functions.ts';
import { NeedsStore } from './needs-store.ts';
import { formatTimestamp } from './timestamp.ts';

/** A JSON string as escape_json writes it: the six short escapes, \u00XX for the other control characters. */
export function jsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(start, i);
    start = i + 1;
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      default: out += `\\u${c.toString(16).padStart(4, '0')}`;
    }
  }
  return out + s.slice(start) + '"';
}

/** One value as to_json prints it. */
export function jsonValue(type: ExprType, v: Value): string {
  if (v === null) return 'null';
  switch (type) {
    case 'int2':
    case 'int4':
    case 'int8':
      return String(v);
    case 'numeric':
      return /^-?\d/.test(v as string) ? (v as string) : jsonString(v as string);
    case 'float8':
      return Number.isFinite(v) ? float8Text(v as number) : jsonString(float8Text(v as number));
    case 'bool':
      return v ? 'true' : 'false';
    case 'text':
      return jsonString(v as string);
    case 'timestamptz':
      return jsonString(`${formatTimestamp(v as number, false).replace(' ', 'T')}+00:00`);
    case 'timestamp':
      return jsonString(formatTimestamp(v as number, false).replace(' ', 'T'));
    default:
      throw new NeedsStore(`${type} in JSON`);
  }
}

/** A row as to_json(row) prints it. */
export function jsonObject(names: readonly string[], types: readonly ExprType[], values: readonly (NonNullValue | null)[]): string {
  let out = '{';
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ',';
    out += `${jsonString(names[i])}:${jsonValue(types[i], values[i])}`;
  }
  return out + '}';
}
