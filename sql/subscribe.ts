import type { Subscription, SubscriptionRow } from '../engine/change-feed.ts';
import type { ContinuousView } from '../engine/continuous-view.ts';
import { outputStreamName } from '../engine/continuous-view.ts';
import { SqlError, SqlState } from '../engine/errors.ts';
import { qualifiedName, quoteIdent } from '../engine/sql-text.ts';
import type { StatementContext } from './context.ts';

/**
 * Materialize's SUBSCRIBE, over a continuous view: every committed change of
 * the view as rows (mz_timestamp, mz_diff, the view's columns), in commit
 * order. Three spellings: `SUBSCRIBE v` streams rows as one endless result,
 * `COPY (SUBSCRIBE v) TO STDOUT` as COPY data (psql prints it as it comes),
 * and `DECLARE c CURSOR FOR SUBSCRIBE v` + `FETCH` for drivers that cannot stream.
 */
export type SubscriptionStatement =
  | { kind: 'subscribe'; target: SubscribeTarget; options: SubscribeOptions; copy?: { csv: boolean } }
  | { kind: 'declare'; cursor: string; target: SubscribeTarget; options: SubscribeOptions }
  | { kind: 'fetch'; cursor: string; count: number; timeoutMs: number }
  | { kind: 'close'; cursor: string | undefined };

export interface SubscribeTarget {
  schema?: string;
  name: string;
}

export interface SubscribeOptions {
  /** Start with the view's current rows (Materialize's default) or with the next change only. */
  snapshot: boolean;
  /** How many rows may wait for the client before it is dropped as too slow. */
  maxBacklogRows: number;
}

/** Rows a subscriber may leave unread before it is disconnected. */
export const defaultMaxBacklogRows = 1_000_000;

const mayBeSubscription = /^\s*(?:subscribe\b|copy\s*\(\s*subscribe\b|declare\b[^;]*\bsubscribe\b|fetch\b|move\b|close\b)/i;

/**
 * Recognizes the SUBSCRIBE statements (and FETCH/CLOSE, which only concern
 * Sluice when they name a subscription cursor): undefined for anything else.
 * Errors in a SUBSCRIBE are thrown as SqlErrors.
 */
export function parseSubscription(sql: string): SubscriptionStatement | undefined {
  if (!mayBeSubscription.test(sql)) return undefined;
  const tokens = new Tokens(sql);
  const first = tokens.word();
  if (first === 'subscribe') return { kind: 'subscribe', ...subscribeBody(tokens) };
  if (first === 'copy') {
    tokens.expect('(');
    tokens.expectWord('subscribe');
    const body = subscribeBody(tokens, ')');
    tokens.expect(')');
    tokens.expectWord('to');
    tokens.expectWord('stdout');
    const copy = copyOptions(tokens);
    tokens.end();
    return { kind: 'subscribe', ...body, copy };
  }
  if (first === 'declare') {
    const cursor = tokens.identifier();
    for (let word = tokens.peekWord(); word !== undefined && word !== 'cursor'; word = tokens.peekWord()) {
      tokens.word();
      if (word === 'no') tokens.expectWord('scroll');
      else if (word !== 'insensitive' && word !== 'asensitive') return declareOption(tokens, word);
    }
    tokens.expectWord('cursor');
    const hold = tokens.peekWord();
    if (hold === 'with' || hold === 'without') {
      tokens.word();
      tokens.expectWord('hold');
      if (hold === 'with') return declareOption(tokens, 'with hold');
    }
    tokens.expectWord('for');
    if (tokens.peekWord() !== 'subscribe') return undefined; // an ordinary cursor: PostgreSQL's
    tokens.word();
    return { kind: 'declare', cursor, ...subscribeBody(tokens) };
  }
  if (first === 'fetch' || first === 'move') return fetchStatement(tokens, first);
  if (first === 'close') {
    if (tokens.peekWord() === 'all') {
      tokens.word();
      tokens.end();
      return { kind: 'close', cursor: undefined };
    }
    const cursor = tokens.identifier();
    tokens.end();
    return { kind: 'close', cursor };
  }
  return undefined;
}

/** A DECLARE option a subscription cannot have: refused if the cursor is for SUBSCRIBE, else PostgreSQL's. */
function declareOption(tokens: Tokens, option: string): undefined {
  if (!tokens.rest().match(/\bfor\s+subscribe\b/i)) return undefined;
  throw new SqlError(SqlState.featureNotSupported, `DECLARE … ${option.toUpperCase()} CURSOR FOR SUBSCRIBE is not supported`, {
    hint: 'A subscription cursor reads forward, in text, until its transaction ends.',
  });
}

function subscribeBody(tokens: Tokens, closing?: string): { target: SubscribeTarget; options: SubscribeOptions } {
  if (tokens.peekWord() === 'to') tokens.word();
  if (tokens.peek() === '(') throw new SqlError(SqlState.featureNotSupported, 'SUBSCRIBE to a query is not supported', { hint: 'Subscribe to a continuous view: CREATE VIEW v AS SELECT … FROM stream, then SUBSCRIBE v.' });
  let name = tokens.identifier();
  let schema: string | undefined;
  if (tokens.peek() === '.') {
    tokens.expect('.');
    schema = name;
    name = tokens.identifier();
  }
  const options: SubscribeOptions = { snapshot: true, maxBacklogRows: defaultMaxBacklogRows };
  if (tokens.peekWord() === 'with') {
    tokens.word();
    tokens.expect('(');
    for (;;) {
      const option = tokens.word();
      if (tokens.peek() === '=') tokens.expect('=');
      const value = tokens.peek() === ',' || tokens.peek() === ')' ? undefined : tokens.value();
      if (option === 'snapshot') options.snapshot = booleanOption(option, value);
      else if (option === 'max_backlog_rows') options.maxBacklogRows = positiveOption(option, value);
      else throw new SqlError(SqlState.featureNotSupported, `SUBSCRIBE option "${option}" is not supported`, { hint: 'Supported options: SNAPSHOT, MAX_BACKLOG_ROWS.' });
      if (tokens.peek() === ',') {
        tokens.expect(',');
        continue;
      }
      tokens.expect(')');
      break;
    }
  }
  const rest = tokens.peekWord();
  if (rest !== undefined && rest !== 'to') throw new SqlError(SqlState.featureNotSupported, `SUBSCRIBE … ${rest.toUpperCase()} is not supported`, { hint: 'SUBSCRIBE [TO] view [WITH (SNAPSHOT = true|false)] is.' });
  if (!closing) tokens.end();
  return { target: { schema, name }, options };
}

function copyOptions(tokens: Tokens): { csv: boolean } {
  const copy = { csv: false };
  if (tokens.peekWord() !== 'with' && tokens.peek() !== '(') return copy;
  if (tokens.peekWord() === 'with') tokens.word();
  tokens.expect('(');
  for (;;) {
    const option = tokens.word();
    const value = tokens.peek() === ',' || tokens.peek() === ')' ? undefined : tokens.value();
    if (option !== 'format' || (value !== 'text' && value !== 'csv')) {
      throw new SqlError(SqlState.featureNotSupported, `COPY (SUBSCRIBE …) option ${option}${value ? ` ${value}` : ''} is not supported`, { hint: 'FORMAT text (the default) and FORMAT csv are.' });
    }
    copy.csv = value === 'csv';
    if (tokens.peek() === ',') {
      tokens.expect(',');
      continue;
    }
    tokens.expect(')');
    return copy;
  }
}

/** `FETCH [FORWARD|NEXT] [n|ALL] [FROM|IN] c [WITH (TIMEOUT = '1s')]` (MOVE is refused when it names a subscription). */
function fetchStatement(tokens: Tokens, verb: string): SubscriptionStatement | undefined {
  let count = 1;
  let word = tokens.peekWord();
  if (word === 'forward' || word === 'next') {
    tokens.word();
    word = tokens.peekWord();
  }
  if (word === 'all') {
    tokens.word();
    count = Infinity;
  } else if (tokens.peekNumber()) {
    count = Number(tokens.value());
  } else if (word !== undefined && ['prior', 'first', 'last', 'absolute', 'relative', 'backward'].includes(word)) {
    return undefined; // never valid on a subscription; PostgreSQL answers for its own cursors
  }
  word = tokens.peekWord();
  if (word === 'from' || word === 'in') tokens.word();
  const cursor = tokens.identifier();
  let timeoutMs = Infinity;
  if (tokens.peekWord() === 'with') {
    tokens.word();
    tokens.expect('(');
    tokens.expectWord('timeout');
    if (tokens.peek() === '=') tokens.expect('=');
    timeoutMs = intervalMs(tokens.value());
    tokens.expect(')');
  }
  tokens.end();
  if (verb === 'move') return { kind: 'fetch', cursor, count: -1, timeoutMs };
  return { kind: 'fetch', cursor, count, timeoutMs };
}

function booleanOption(option: string, value: string | undefined): boolean {
  if (value === undefined || ['true', 'on', '1', 'yes'].includes(value)) return true;
  if (['false', 'off', '0', 'no'].includes(value)) return false;
  throw new SqlError(SqlState.invalidParameterValue, `${option} requires a Boolean value`);
}

function positiveOption(option: string, value: string | undefined): number {
  const n = value === undefined ? NaN : Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new SqlError(SqlState.invalidParameterValue, `${option} must be a positive integer`);
  return n;
}

const units: Record<string, number> = { ms: 1, millisecond: 1, milliseconds: 1, s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000, m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000, h: 3_600_000, hour: 3_600_000, hours: 3_600_000 };

/** A FETCH timeout such as `'1s'`, `'500 ms'` or `'0'`. */
function intervalMs(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = match ? (match[2] === '' ? 1000 : units[match[2].toLowerCase()]) : undefined;
  if (!match || factor === undefined) throw new SqlError(SqlState.invalidParameterValue, `invalid FETCH timeout: "${text}"`, { hint: "Write a duration such as '1s' or '250ms'." });
  return Number(match[1]) * factor;
}

/** A small tokenizer for the statements above (words lower-cased, identifiers and literals as PostgreSQL reads them). */
class Tokens {
  private i = 0;
  constructor(private readonly sql: string) {}

  private skip(): void {
    for (;;) {
      while (this.i < this.sql.length && /\s/.test(this.sql[this.i])) this.i++;
      if (this.sql.startsWith('--', this.i)) {
        const nl = this.sql.indexOf('\n', this.i);
        this.i = nl < 0 ? this.sql.length : nl + 1;
      } else if (this.sql.startsWith('/*', this.i)) {
        const close = this.sql.indexOf('*/', this.i + 2);
        this.i = close < 0 ? this.sql.length : close + 2;
      } else {
        return;
      }
    }
  }

  peek(): string | undefined {
    this.skip();
    return this.i < this.sql.length ? this.sql[this.i] : undefined;
  }

  peekWord(): string | undefined {
    this.skip();
    const match = /^[a-z_][a-z0-9_]*/i.exec(this.sql.slice(this.i));
    return match ? match[0].toLowerCase() : undefined;
  }

  peekNumber(): boolean {
    this.skip();
    return /[0-9]/.test(this.sql[this.i] ?? '');
  }

  word(): string {
    const word = this.peekWord();
    if (word === undefined) throw this.syntaxError();
    this.i += word.length;
    return word;
  }

  expectWord(word: string): void {
    if (this.peekWord() !== word) throw this.syntaxError();
    this.i += word.length;
  }

  expect(char: string): void {
    if (this.peek() !== char) throw this.syntaxError();
    this.i++;
  }

  /** An identifier: quoted as written, unquoted lower-cased. */
  identifier(): string {
    if (this.peek() === '"') return this.quoted('"');
    const match = /^[a-z_\u0080-\uffff][a-z0-9_$\u0080-\uffff]*/i.exec(this.sql.slice(this.i));
    if (!match) throw this.syntaxError();
    this.i += match[0].length;
    return match[0].toLowerCase();
  }

  /** An option value: a quoted string, a number or a word. */
  value(): string {
    const c = this.peek();
    if (c === "'") return this.quoted("'");
    const match = /^[a-z0-9_.+-]+/i.exec(this.sql.slice(this.i));
    if (!match) throw this.syntaxError();
    this.i += match[0].length;
    return /^[a-z_]/i.test(match[0]) ? match[0].toLowerCase() : match[0];
  }

  private quoted(quote: string): string {
    let text = '';
    this.i++;
    for (;;) {
      const at = this.sql.indexOf(quote, this.i);
      if (at < 0) throw this.syntaxError();
      text += this.sql.slice(this.i, at);
      this.i = at + 1;
      if (this.sql[this.i] !== quote) return text;
      text += quote;
      this.i++;
    }
  }

  /** What is left to read. */
  rest(): string {
    return this.sql.slice(this.i);
  }

  end(): void {
    if (this.peek() === ';') this.i++;
    if (this.peek() !== undefined) throw this.syntaxError();
  }

  private syntaxError(): SqlError {
    this.skip();
    const near = this.sql.slice(this.i).split(/\s/)[0];
    return new SqlError(SqlState.syntaxError, near ? `syntax error at or near "${near}"` : 'syntax error at end of input', { position: this.i + 1 });
  }
}

/** A view's subscription and the columns its rows carry. */
export interface OpenedSubscription {
  subscription: Subscription;
  columns: { name: string; typeOid: number }[];
}

/**
 * Starts a subscription on the client's session: registers it, then (with
 * snapshot) reads the view's rows and the snapshot they were read in, in one
 * statement, so the changes that follow are exactly those the read did not see.
 */
export async function openSubscription(ctx: StatementContext, target: SubscribeTarget, options: SubscribeOptions): Promise<OpenedSubscription> {
  const view = await subscribedView(ctx, target);
  const relation = qualifiedName(view.plan.schema, view.name);
  const described = await ctx.conn.query(
    'SELECT attname::text, atttypid::int FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum',
    [relation],
  );
  const columns = [
    { name: 'mz_timestamp', typeOid: 1700 },
    { name: 'mz_diff', typeOid: 20 },
    ...described.rows.map(([name, oid]) => ({ name: name as string, typeOid: Number(oid) })),
  ];
  const subscription = ctx.engine.changes.subscribe(view, options.maxBacklogRows);
  try {
    if (options.snapshot) {
      const read = await ctx.conn.query(`WITH s AS (SELECT pg_current_snapshot()::text AS snap) SELECT s.snap, v::text FROM s LEFT JOIN ${relation} AS v ON true`);
      subscription.begin({ snapshot: read.rows[0][0] as string, rows: read.rows.filter(([, row]) => row !== null).map(([, row]) => row as string) });
    } else {
      subscription.begin();
    }
  } catch (err) {
    subscription.end();
    throw err;
  }
  return { subscription, columns };
}

async function subscribedView(ctx: StatementContext, target: SubscribeTarget): Promise<ContinuousView> {
  const { engine } = ctx;
  const view = target.schema ? engine.view(target.schema, target.name) : (engine.view('public', target.name) ?? engine.allViews().find((v) => v.name === target.name));
  const shown = target.schema ? `${target.schema}.${target.name}` : target.name;
  if (!view) {
    const exists = await ctx.conn.query('SELECT to_regclass($1) IS NOT NULL', [target.schema ? qualifiedName(target.schema, target.name) : quoteIdent(target.name)]);
    if (exists.rows[0][0] === 't') throw new SqlError(SqlState.wrongObjectType, `"${shown}" is not a continuous view`, { hint: 'SUBSCRIBE follows continuous views (CREATE VIEW … AS SELECT … FROM a stream).' });
    throw new SqlError(SqlState.undefinedTable, `relation "${shown}" does not exist`);
  }
  if (!engine.stream(view.plan.schema, outputStreamName(view.name))) {
    throw new SqlError(SqlState.featureNotSupported, `SUBSCRIBE to ${shown} is not supported: the changes of a view holding sketches are not computed`, {
      hint: 'Subscribe to a view of exact aggregates; sketch columns (hll, t-digest, top-k…) are read with SELECT.',
    });
  }
  return view;
}

/** A subscription row as the values of a DataRow: the timestamp, the diff, then the view's columns. */
export function subscriptionValues(row: SubscriptionRow, columnCount: number): (string | null)[] {
  return [String(row.timestamp), String(row.diff), ...recordFields(row.row, columnCount)];
}

/**
 * The fields of a record in PostgreSQL's text form (`(1,"a b",)`): quoted
 * fields unescaped, an empty unquoted field NULL.
 */
export function recordFields(text: string, columnCount: number): (string | null)[] {
  const fields: (string | null)[] = [];
  const end = text.length - 1;
  let i = 1;
  for (;;) {
    let value = '';
    let present = false;
    while (i < end && text[i] !== ',') {
      present = true;
      const c = text[i];
      if (c === '"') {
        i++;
        while (i < end) {
          if (text[i] === '"') {
            if (text[i + 1] === '"') {
              value += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (text[i] === '\\') i++;
          value += text[i++];
        }
      } else {
        if (c === '\\') i++;
        value += text[i++];
      }
    }
    fields.push(present ? value : null);
    if (i >= end || fields.length >= columnCount) break;
    i++;
  }
  while (fields.length < columnCount) fields.push(null);
  return fields;
}

/** One line of COPY text (or CSV) output for the given values, newline included. */
export function copyLine(values: readonly (string | null)[], csv: boolean): string {
  if (csv) return `${values.map((v) => (v === null ? '' : v === '' || /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(',')}\n`;
  return `${values.map((v) => (v === null ? '\\N' : v.replace(/[\\\t\n\r]/g, (c) => copyEscapes[c]))).join('\t')}\n`;
}

const copyEscapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
