/**
 * jsonb for compiled expressions: `->`, `->>`, `#>`, `#>>` and `?` over a
 * jsonb column, with PostgreSQL's results. Documents are parsed by a small
 * parser that keeps each number's text (jsonb prints numbers as numeric
 * does: 1.50 stays 1.50, 1e2 is 100). Text the engine cannot promise to
 * read as PostgreSQL does (escapes \u…, invalid JSON, which the store
 * rejects with its own error) and results only the store prints alike
 * (objects and arrays as text) go to the store (NeedsStore).
 */
import { numericToString, parseNumeric } from '../values/index.ts';
import { NeedsStore } from './needs-store.ts';

/** A parsed jsonb value: objects as Maps (the last of duplicate keys wins, as in jsonb), numbers by their text. */
export type Json = null | boolean | string | JsonNumber | Json[] | Map<string, Json>;

export class JsonNumber {
  constructor(readonly text: string) {}
}

/** A jsonb value inside a compiled expression (kept apart from text values). */
export class Jsonb {
  constructor(readonly value: Json) {}
}

export function parseJsonb(text: string): Jsonb {
  if (text.includes('\\u')) throw new NeedsStore('jsonb with \\u escapes');
  const parser = new Parser(text);
  const value = parser.value();
  parser.end();
  return new Jsonb(value);
}

/** Nesting the engine reads (PostgreSQL reads deeper documents; the store takes those). */
const maxDepth = 500;

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly text: string) {}

  private fail(): never {
    // The store reports invalid input with PostgreSQL's own message.
    throw new NeedsStore('invalid JSON');
  }

  private space(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  end(): void {
    this.space();
    if (this.pos !== this.text.length) this.fail();
  }

  value(): Json {
    this.space();
    const c = this.text[this.pos];
    if (c === '{' || c === '[') {
      if (++this.depth > maxDepth) throw new NeedsStore('deeply nested jsonb');
      const nested = c === '{' ? this.object() : this.array();
      this.depth--;
      return nested;
    }
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    return this.fail();
  }

  private object(): Map<string, Json> {
    const map = new Map<string, Json>();
    this.pos++;
    this.space();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return map;
    }
    for (;;) {
      this.space();
      if (this.text[this.pos] !== '"') this.fail();
      const key = this.string();
      this.space();
      if (this.text[this.pos++] !== ':') this.fail();
      map.set(key, this.value());
      this.space();
      const c = this.text[this.pos++];
      if (c === '}') return map;
      if (c !== ',') this.fail();
    }
  }

  private array(): Json[] {
    const items: Json[] = [];
    this.pos++;
    this.space();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.value());
      this.space();
      const c = this.text[this.pos++];
      if (c === ']') return items;
      if (c !== ',') this.fail();
    }
  }

  private string(): string {
    const t = this.text;
    let out = '';
    let start = ++this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail();
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) break;
      if (c < 0x20) this.fail();
      if (c === 0x5c) {
        out += t.slice(start, this.pos);
        const e = t[this.pos + 1];
        const unescaped = ({ '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' } as Record<string, string>)[e];
        if (unescaped === undefined) this.fail();
        out += unescaped;
        this.pos += 2;
        start = this.pos;
        continue;
      }
      this.pos++;
    }
    out += t.slice(start, this.pos);
    this.pos++;
    return out;
  }

  private number(): JsonNumber {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE]([+-]?\d+))?/.exec(this.text.slice(this.pos, this.pos + 400));
    if (!match) this.fail();
    // numeric's limits (and its error) for huge exponents are the store's.
    if (match[1] && Math.abs(Number(match[1])) > 1000) throw new NeedsStore('a jsonb number with a huge exponent');
    this.pos += match[0].length;
    return new JsonNumber(match[0]);
  }
}

function child(value: Json, key: string | number): Json | undefined {
  if (typeof key === 'string') return value instanceof Map ? value.get(key) : undefined;
  // A scalar reads as an array of itself (jsonb stores it so).
  if (!Array.isArray(value)) return value instanceof Map || (key !== 0 && key !== -1) ? undefined : value;
  const index = key < 0 ? value.length + key : key;
  return index >= 0 && index < value.length ? value[index] : undefined;
}

/** `->`: the field or element, NULL when there is none. */
export function jsonbField(doc: Jsonb, key: string | number): Jsonb | null {
  const v = child(doc.value, key);
  return v === undefined ? null : new Jsonb(v);
}

/** `#>`: the value at a path (text[] of keys and array indexes). */
export function jsonbPath(doc: Jsonb, path: string[]): Jsonb | null {
  let v: Json | undefined = doc.value;
  for (const step of path) {
    if (v instanceof Map) v = v.get(step);
    else if (Array.isArray(v) && /^[+-]?\d+$/.test(step)) v = child(v, Number(step));
    else return null;
    if (v === undefined) return null;
  }
  return new Jsonb(v);
}

/** The text `->>` gives for a value: strings unquoted, JSON null as SQL NULL, numbers as numeric prints them. */
export function jsonbText(doc: Jsonb | null): string | null {
  if (doc === null) return null;
  const v = doc.value;
  if (v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof JsonNumber) return numericToString(parseNumeric(v.text));
  // Objects and arrays print in jsonb's normalized form: the store's job.
  throw new NeedsStore('jsonb object or array as text');
}

/** `?`: a top-level key of an object, or a string element of an array. */
export function jsonbExists(doc: Jsonb, key: string): boolean {
  const v = doc.value;
  if (v instanceof Map) return v.has(key);
  if (Array.isArray(v)) return v.some((e) => e === key);
  return v === key;
}
