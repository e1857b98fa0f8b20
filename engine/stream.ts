import { inputFunction, type InputFunction } from './values/index.ts';

/** A column of a stream, with its type as the serving store names it. */
export interface StreamColumn {
  name: string;
  /** `format_type()` spelling, usable in casts: `integer`, `character varying(3)`. */
  type: string;
  /** `pg_type.typname`: `int4`, `varchar`. */
  typeName: string;
  typmod: number;
  typeOid: number;
}

/** The implicit column every stream has (PipelineDB). */
export const arrivalTimestamp = 'arrival_timestamp';

/**
 * A stream: a named, typed flow of rows that is never stored. Rows written to
 * it feed the continuous views that read it.
 */
export class Stream {
  /** Converts a column's text input to the engine's value, or undefined when the store must check it. */
  readonly inputs: (InputFunction | undefined)[];
  private readonly positions: Map<string, number>;

  constructor(
    readonly schema: string,
    readonly name: string,
    readonly columns: readonly StreamColumn[],
    /** Options of a stream declared on SERVER kafka (brokers, topic, format, …): the stream is that topic. */
    readonly kafkaOptions?: Readonly<Record<string, string>>,
  ) {
    this.inputs = columns.map((c) => inputFunction(c.typeName, c.typmod));
    this.positions = new Map(columns.map((c, i) => [c.name, i]));
  }

  get key(): string {
    return streamKey(this.schema, this.name);
  }

  position(column: string): number | undefined {
    return this.positions.get(column);
  }

  /**
   * For rows of columns `names` written to this stream (a transform's output):
   * which of them each stream column takes, or -1 for none. By name when
   * every name is one of the stream's columns, otherwise by position
   * (PipelineDB's insert_into_stream); arrival_timestamp only by name.
   */
  sourcesOf(names: readonly string[]): number[] {
    const byName = names.every((n) => this.positions.has(n));
    const userColumns = this.columns.filter((c) => c.name !== arrivalTimestamp);
    return this.columns.map((column) => (byName ? names.indexOf(column.name) : userColumns.indexOf(column) < names.length ? userColumns.indexOf(column) : -1));
  }
}

export function streamKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}
