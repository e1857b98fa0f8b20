import type { Value } from './values/index.ts';

/**
 * Rows in flight through the engine, stored by column: `columns[i][r]` is
 * column i of row r, aligned with the stream's column list.
 */
export interface RowBatch {
  length: number;
  columns: Value[][];
}

export function emptyBatch(columnCount: number): RowBatch {
  return { length: 0, columns: Array.from({ length: columnCount }, () => []) };
}
