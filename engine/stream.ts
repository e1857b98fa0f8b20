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
}

export function streamKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}
