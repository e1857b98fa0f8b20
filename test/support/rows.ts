import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/** A row as text values (NULL as null), as tests generate them and read them back. */
export type TextRow = (string | null)[];

/** Rows as a VALUES list of quoted literals (the values must not contain quotes). */
export function valuesSql(rows: TextRow[]): string {
  return rows.map((r) => `(${r.map((v) => (v === null ? 'NULL' : `'${v}'`)).join(', ')})`).join(', ');
}

/** Rows sent with COPY … FROM STDIN in text format. */
export async function copyInto(client: pg.Client, relation: string, columns: string, rows: TextRow[]): Promise<void> {
  const text = rows.map((r) => r.map((v) => (v === null ? '\\N' : v)).join('\t')).join('\n') + '\n';
  await pipeline(Readable.from([text]), client.query(copyFrom(`COPY ${relation} (${columns}) FROM STDIN`)));
}

/** The SQLSTATE and message a query fails with (empty when it succeeds): to compare Sluice's errors with PostgreSQL's. */
export async function failure(query: Promise<unknown>): Promise<{ code?: string; message?: string }> {
  try {
    await query;
  } catch (err) {
    const { code, message } = err as pg.DatabaseError;
    return { code, message };
  }
  return {};
}

/**
 * The oracle tests' setup: a stream `s` and a table `t` of the same columns,
 * and each view's query (written over `{src}`) created over the stream; the
 * same query over `t` is PostgreSQL's answer.
 */
export async function createStreamTableAndViews(client: pg.Client, columns: string, views: Record<string, string>): Promise<void> {
  await client.query(`CREATE FOREIGN TABLE s (${columns}) SERVER pipelinedb`);
  await client.query(`CREATE TABLE t (${columns})`);
  for (const [name, sql] of Object.entries(views)) await client.query(`CREATE VIEW ${name} AS ${sql.replaceAll('{src}', 's')}`);
}
