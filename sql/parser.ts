import libpgQuery from 'libpg-query';
import type { Node, RawStmt } from 'libpg-query';
import { SqlError, SqlState } from '../engine/errors.ts';

/**
 * The SQL front end's parser: PostgreSQL's own grammar (libpg-query), plus
 * the friendlier spellings Sluice accepts on top of PipelineDB 1.0's syntax,
 * rewritten into it before parsing.
 */

let loaded: Promise<void> | undefined;

export function loadParser(): Promise<void> {
  loaded ??= libpgQuery.loadModule();
  return loaded;
}

export interface ParsedStatement {
  /** The statement's AST node (e.g. `{ SelectStmt: … }`). */
  node: Node;
  /** The statement's own text (after alias rewriting). */
  text: string;
  /** Offset of `text` in the (rewritten) query string. */
  offset: number;
}

export interface ParsedQuery {
  /** The query after alias rewriting. */
  text: string;
  statements: ParsedStatement[];
}

/** Parses a query string of one or more statements; throws SqlError 42601 on bad syntax. */
export function parseQuery(query: string): ParsedQuery {
  const text = rewriteAliases(query);
  let stmts: RawStmt[];
  try {
    stmts = libpgQuery.parseSync(text).stmts ?? [];
  } catch (err) {
    throw syntaxError(err);
  }
  return {
    text,
    statements: stmts.map((raw) => {
      const offset = raw.stmt_location ?? 0;
      const length = raw.stmt_len ?? text.length - offset;
      return { node: raw.stmt as Node, text: text.slice(offset, offset + (length || text.length - offset)).trim(), offset };
    }),
  };
}

/** Parses a single expression (used to build SQL from generated fragments). */
export function parseExpression(sql: string): Node {
  const stmt = libpgQuery.parseSync(`SELECT ${sql}`).stmts?.[0]?.stmt as { SelectStmt: { targetList: { ResTarget: { val: Node } }[] } };
  return stmt.SelectStmt.targetList[0].ResTarget.val;
}

function syntaxError(err: unknown): SqlError {
  const details = (err as { sqlDetails?: { message: string; cursorPosition: number } }).sqlDetails;
  const message = details?.message ?? (err instanceof Error ? err.message : String(err));
  return new SqlError(SqlState.syntaxError, message, {
    position: details ? details.cursorPosition + 1 : undefined,
  });
}

const aliasHint = /\b(stream|continuous)\b/i;

/**
 * `CREATE STREAM s (…)` → `CREATE FOREIGN TABLE s (…) SERVER pipelinedb`,
 * `DROP STREAM` → `DROP FOREIGN TABLE`, `CREATE CONTINUOUS VIEW` → `CREATE VIEW`.
 * Works on tokens, so string literals and comments are never touched.
 */
export function rewriteAliases(query: string): string {
  if (!aliasHint.test(query)) return query;
  let tokens;
  try {
    tokens = libpgQuery.scanSync(query).tokens;
  } catch {
    return query;
  }
  const edits: { start: number; end: number; text: string }[] = [];
  let statementStart = true;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token.text === ';') {
      statementStart = true;
      continue;
    }
    if (!statementStart) continue;
    statementStart = false;
    const first = token.text.toLowerCase();
    const second = tokens[i + 1]?.text.toLowerCase();
    if ((first === 'create' || first === 'drop') && second === 'stream') {
      edits.push({ start: tokens[i + 1].start, end: tokens[i + 1].end, text: 'FOREIGN TABLE' });
      if (first === 'create') {
        const end = statementEnd(tokens, i);
        edits.push({ start: end, end, text: ' SERVER pipelinedb' });
      }
    } else if (first === 'create' && second === 'continuous') {
      edits.push({ start: tokens[i + 1].start, end: tokens[i + 1].end + 1, text: '' });
    }
  }
  edits.sort((a, b) => b.start - a.start);
  let out = query;
  for (const edit of edits) out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  return out;
}

function statementEnd(tokens: { text: string; end: number }[], from: number): number {
  let end = tokens[from].end;
  for (let j = from; j < tokens.length && tokens[j].text !== ';'; j++) end = tokens[j].end;
  return end;
}
