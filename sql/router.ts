import { SqlError, SqlState } from '../engine/errors.ts';
import type { Stream } from '../engine/stream.ts';
import type { AstFields, AstNode } from './ast.ts';
import { deparse, fieldsOf, nodeKind, walk } from './ast.ts';
import { findStream, type StatementContext, type StatementResult } from './context.ts';
import { resultColumns, runFunctionCall, type FunctionRegistry } from './functions.ts';
import { rewriteCombine } from './combine.ts';
import { rewriteHashGroup } from './hash-group.ts';
import { rewriteFirstValuesRows } from './first-values.ts';
import { protectedDropError } from './catalog-guard.ts';
import { createIndexOnView } from './view-index.ts';
import type { ParsedStatement } from './parser.ts';
import { createStream, dropObjects, dropsSluiceObjects } from './stream-ddl.ts';
import { insertIntoStream } from './stream-writes.ts';
import { alterViewOptions, createContinuousView, findView, isContinuous, viewDefinition } from './view-ddl.ts';

/**
 * Decides who runs a statement: Sluice itself (stream and view DDL, writes
 * into streams) or the serving store (everything else).
 */
export type Route =
  | {
      kind: 'store';
      /** The statement may change which streams exist or their columns. */
      changesStreams: boolean;
      /** The statement as the store should run it, when Sluice rewrote it (combine()). */
      rewritten?: string;
    }
  | {
      kind: 'sluice';
      /** Types of `$n` parameters, when known. */
      paramTypes: number[];
      /** The result columns, for statements that return rows. */
      columns?: { name: string; typeOid: number }[];
      run(ctx: StatementContext): Promise<StatementResult>;
    }
  | { kind: 'copyIn'; target: CopyTarget };

export type CopyTarget =
  | { kind: 'stream'; stream: Stream; stmt: AstFields }
  | { kind: 'table'; stmt: AstFields };

const builtInExtensions = new Set(['pipelinedb', 'pipeline_kafka']);

const streamChangingStatements = new Set([
  'CreateForeignTableStmt', 'AlterTableStmt', 'RenameStmt', 'AlterObjectSchemaStmt', 'DropStmt', 'DropOwnedStmt', 'CreateSchemaStmt',
]);

/** Statements that may not run inside a transaction block, because they change the engine as well as the store. */
function outsideTransaction(ctx: StatementContext, what: string): void {
  if (ctx.conn.transactionStatus !== 'I') {
    throw new SqlError('25001', `${what} cannot run inside a transaction block`);
  }
}

/** Words that can start a statement Sluice runs itself or must watch (DDL that changes streams). */
const watchedWords = /\b(create|drop|alter|copy|comment|rename|extension|stream|continuous|import|security|pipeline_kafka|pipelinedb|sluice|combine|hash_group|first_values)\b/i;
const identifier = /[a-z_\u0080-\uffff][a-z0-9_$\u0080-\uffff]*/gi;

/**
 * A cheap screen run before parsing: true when a query certainly belongs to
 * the serving store alone — it has none of the watched words and names no
 * stream — so it can be forwarded without being parsed.
 */
export function plainlyForStore(engine: Pick<StatementContext['engine'], 'streamNames'>, sql: string): boolean {
  if (watchedWords.test(sql)) return false;
  const names = engine.streamNames();
  if (names.size === 0) return true;
  for (const word of sql.matchAll(identifier)) {
    if (names.has(word[0].toLowerCase())) return false;
  }
  return true;
}

/** What routing needs to know: the engine's objects and Sluice's own functions. */
export interface RoutingContext {
  engine: StatementContext['engine'];
  functions: FunctionRegistry;
}

/**
 * Routes a statement. An error found while routing (a bad combine(), …) is
 * reported when the statement runs, as a statement error, never as a
 * protocol failure.
 */
export function routeStatement(ctx: RoutingContext, statement: ParsedStatement): Route {
  try {
    return route(ctx, statement);
  } catch (err) {
    return { kind: 'sluice', paramTypes: [], run: async () => { throw err; } };
  }
}

function route(ctx: RoutingContext, statement: ParsedStatement): Route {
  const kind = nodeKind(statement.node) ?? '';
  const stmt = (statement.node as unknown as Record<string, AstFields>)[kind] ?? {};
  const sluice = (run: (c: StatementContext) => Promise<StatementResult>, paramTypes: number[] = []): Route => ({ kind: 'sluice', paramTypes, run });

  switch (kind) {
    case 'CreateForeignTableStmt':
      if (stmt.servername === 'pipelinedb' || stmt.servername === 'kafka') {
        return sluice(async (c) => {
          outsideTransaction(c, 'CREATE STREAM');
          return createStream(c, stmt, statement.text);
        });
      }
      break;
    case 'ViewStmt':
    case 'CreateTableAsStmt': {
      const def = viewDefinition(kind, stmt);
      if (def && isContinuous(ctx, def)) {
        return sluice(async (c) => {
          outsideTransaction(c, 'CREATE VIEW over a stream');
          return createContinuousView(c, def, statement.text);
        });
      }
      // An ordinary view over a continuous view may combine() its states (e.g. another window over a sliding window's _mrel).
      const rewritten = pipelineFunctionsRewrite(ctx, statement.node);
      if (rewritten) return { kind: 'store', changesStreams: false, rewritten };
      break;
    }
    case 'DropStmt': {
      const refused = protectedDropError(stmt);
      if (refused) return sluice(async () => { throw refused; });
      if (dropsSluiceObjects(ctx, stmt)) {
        return sluice(async (c) => {
          outsideTransaction(c, 'DROP of a stream or continuous view');
          return dropObjects(c, stmt);
        });
      }
      break;
    }
    case 'InsertStmt': {
      const relation = stmt.relation as AstFields;
      const stream = findStream(ctx, relation.schemaname as string | undefined, relation.relname as string);
      if (stream) return sluice((c) => insertIntoStream(c, stream, stmt), insertParamTypes(stream, stmt));
      break;
    }
    case 'CopyStmt': {
      const relation = stmt.relation as AstFields | undefined;
      const stream = relation && findStream(ctx, relation.schemaname as string | undefined, relation.relname as string);
      if (stream) {
        if (!stmt.is_from) return sluice(async () => { throw streamIsNotReadable(stream); });
        if (stmt.filename || stmt.is_program) {
          return sluice(async () => { throw new SqlError(SqlState.featureNotSupported, 'COPY into a stream from a file or program is not supported', { hint: 'Use COPY … FROM STDIN (psql: \\copy).' }); });
        }
        return { kind: 'copyIn', target: { kind: 'stream', stream, stmt } };
      }
      if (stmt.is_from && !stmt.filename && !stmt.is_program) return { kind: 'copyIn', target: { kind: 'table', stmt } };
      break;
    }
    case 'IndexStmt': {
      const view = findView(ctx, stmt.relation as AstFields);
      if (view) return sluice((c) => createIndexOnView(c, view, stmt));
      break;
    }
    case 'AlterTableStmt': {
      const relation = stmt.relation as AstFields;
      const view = stmt.objtype === 'OBJECT_VIEW' ? findView(ctx, relation) : undefined;
      const cmds = (stmt.cmds as AstNode[] | undefined) ?? [];
      if (view && cmds.some((c) => fieldsOf(c, 'AlterTableCmd')?.subtype === 'AT_SetRelOptions')) {
        return sluice((c) => alterViewOptions(c, view, cmds));
      }
      break;
    }
    case 'CreateExtensionStmt':
      if (builtInExtensions.has(stmt.extname as string)) return sluice(async () => ({ tag: 'CREATE EXTENSION' }));
      break;
    case 'SelectStmt': {
      const target = ctx.functions.callOf(stmt);
      if (target) {
        return {
          kind: 'sluice',
          paramTypes: [],
          columns: resultColumns(target.fn, target.alias),
          run: (c) => runFunctionCall(c, target.fn, target.call, target.alias),
        };
      }
      const stream = readStream(ctx, statement.node);
      if (stream) return sluice(async () => { throw streamIsNotReadable(stream); });
      const rewritten = pipelineFunctionsRewrite(ctx, statement.node);
      if (rewritten) return { kind: 'store', changesStreams: false, rewritten };
      break;
    }
    case 'ExplainStmt':
    case 'DeclareCursorStmt': {
      const stream = readStream(ctx, statement.node);
      if (stream) return sluice(async () => { throw streamIsNotReadable(stream); });
      const rewritten = pipelineFunctionsRewrite(ctx, statement.node);
      if (rewritten) return { kind: 'store', changesStreams: false, rewritten };
      break;
    }
    case 'UpdateStmt':
    case 'DeleteStmt': {
      const stream = readStream(ctx, statement.node);
      if (stream) return sluice(async () => { throw streamIsNotReadable(stream); });
      break;
    }
  }
  return { kind: 'store', changesStreams: streamChangingStatements.has(kind) };
}

/**
 * PipelineDB's functions that no store function can be: first_values of
 * several values, hash_group of any values, combine(); the statement as the
 * store should run it, or null when it uses none of them.
 */
function pipelineFunctionsRewrite(ctx: RoutingContext, node: AstNode): string | null {
  const rows = rewriteFirstValuesRows(node);
  const hashed = rewriteHashGroup(rows ?? node) ?? rows;
  return rewriteCombine(ctx, hashed ?? node) ?? (hashed && deparse(hashed));
}

function streamIsNotReadable(stream: Stream): SqlError {
  return new SqlError(SqlState.wrongObjectType, `"${stream.name}" is a stream`, {
    hint: 'Streams can only be read by a continuous view\'s FROM clause; create a continuous view over it and query that.',
  });
}

/** The first stream a statement reads as a relation, if any. */
function readStream(ctx: Pick<StatementContext, 'engine'>, node: unknown): Stream | undefined {
  let found: Stream | undefined;
  walk(node, (n, kind) => {
    if (found || kind !== 'RangeVar') return;
    const range = n.RangeVar as AstFields;
    found = findStream(ctx, range.schemaname as string | undefined, range.relname as string);
  });
  return found;
}

/** `INSERT INTO s (a, b) VALUES ($1, $2)`: each parameter takes its column's type. */
function insertParamTypes(stream: Stream, stmt: AstFields): number[] {
  const types: number[] = [];
  const columns = (stmt.cols as unknown[] | undefined)?.map((c) => (fieldsOf(c, 'ResTarget') as AstFields).name as string)
    ?? stream.columns.map((c) => c.name).filter((n) => n !== 'arrival_timestamp');
  const select = fieldsOf(stmt.selectStmt, 'SelectStmt');
  for (const list of (select?.valuesLists as unknown[] | undefined) ?? []) {
    const items = (fieldsOf(list, 'List')?.items as unknown[] | undefined) ?? [];
    items.forEach((item, i) => {
      const param = fieldsOf(item, 'ParamRef');
      const column = stream.columns[stream.position(columns[i] ?? '') ?? -1];
      if (param && column) types[((param.number as number) ?? 1) - 1] = column.typeOid;
    });
  }
  return Array.from(types, (t) => t ?? 0);
}

