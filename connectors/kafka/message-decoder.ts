import { SqlError, SqlState } from '../../engine/errors.ts';
import { jsonArrayLiteral } from '../../engine/sql-text.ts';
import { decodeLine, type CopyFormatOptions } from '../../engine/formats/index.ts';
import type { Stream } from '../../engine/stream.ts';
import type { Value } from '../../engine/values/index.ts';
import type { MessageFormat } from '../../engine/sources.ts';

/** A Kafka message as the source sees it. */
export interface KafkaMessage {
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  /** Milliseconds since the epoch, as Kafka stores it. */
  timestamp: number;
}

/**
 * Stream columns with these names are filled from the message itself rather
 * than its value, so views can group or filter by them.
 */
export const metadataColumns = {
  kafka_key: (m: KafkaMessage) => (m.key === null ? null : m.key.toString('utf8')),
  kafka_partition: (m: KafkaMessage) => String(m.partition),
  kafka_offset: (m: KafkaMessage) => String(m.offset),
  kafka_timestamp: (m: KafkaMessage) => new Date(m.timestamp).toISOString(),
} as const satisfies Record<string, (m: KafkaMessage) => string | null>;

type MetadataColumn = keyof typeof metadataColumns;

function isMetadataColumn(name: string): name is MetadataColumn {
  return Object.hasOwn(metadataColumns, name);
}

/**
 * Turns message values into stream rows: JSON objects by column name (a
 * missing field is NULL, extra fields are ignored; a stream whose only column
 * is json/jsonb takes the whole message), or one CSV/text line with
 * PipelineDB's delimiter/quote/escape options. Values go through the columns'
 * input functions, so coercion follows PostgreSQL's rules; a value the engine
 * cannot check itself stays text for the store to check.
 */
export class MessageDecoder {
  /** Stream positions filled from the message value (not metadata, not arrival_timestamp). */
  private readonly valuePositions: number[];
  /** Names and types of those columns, in the same order (the JSON keys looked up per message). */
  private readonly valueNames: string[];
  private readonly valueTypes: string[];
  private readonly metadata: { position: number; read: (m: KafkaMessage) => string | null }[];
  private readonly wholeMessageColumn: number | undefined;
  private readonly copyOptions: CopyFormatOptions & { columnCount: number };

  constructor(
    readonly stream: Stream,
    private readonly format: MessageFormat,
    options: { delimiter: string | null; quote: string | null; escape: string | null },
  ) {
    const userColumns = stream.columns.map((c, i) => ({ c, i })).filter(({ c }) => c.name !== 'arrival_timestamp');
    this.metadata = userColumns.filter(({ c }) => isMetadataColumn(c.name)).map(({ c, i }) => ({ position: i, read: metadataColumns[c.name as MetadataColumn] }));
    this.valuePositions = userColumns.filter(({ c }) => !isMetadataColumn(c.name)).map(({ i }) => i);
    this.valueNames = this.valuePositions.map((p) => stream.columns[p].name);
    this.valueTypes = this.valuePositions.map((p) => stream.columns[p].typeName);
    const only = this.valuePositions.length === 1 ? stream.columns[this.valuePositions[0]] : undefined;
    this.wholeMessageColumn = only && (only.typeName === 'json' || only.typeName === 'jsonb') ? this.valuePositions[0] : undefined;
    this.copyOptions = {
      format: format === 'csv' ? 'csv' : 'text',
      delimiter: options.delimiter ?? undefined,
      quote: format === 'csv' ? options.quote ?? undefined : undefined,
      escape: format === 'csv' ? options.escape ?? undefined : undefined,
      columnNames: this.valuePositions.map((p) => stream.columns[p].name),
      relationName: stream.name,
      columnCount: this.valuePositions.length,
    };
  }

  /** The row of a message, aligned with the stream's columns (arrival_timestamp left null); throws SqlError for a bad message. */
  decode(message: KafkaMessage): Value[] {
    const row: Value[] = new Array(this.stream.columns.length).fill(null);
    const positions = this.valuePositions;
    if (this.format === 'json' && this.wholeMessageColumn === undefined) {
      // The common case, field by field straight into the row.
      const object = jsonObject(messageText(message));
      for (let i = 0; i < positions.length; i++) row[positions[i]] = this.coerce(positions[i], jsonFieldText(object[this.valueNames[i]], this.valueTypes[i]));
    } else {
      const texts = this.valueTexts(message);
      for (let i = 0; i < positions.length; i++) row[positions[i]] = this.coerce(positions[i], texts[i]);
    }
    for (const { position, read } of this.metadata) row[position] = this.coerce(position, read(message));
    return row;
  }

  private coerce(position: number, text: string | null | undefined): Value {
    if (text === null || text === undefined) return null;
    const input = this.stream.inputs[position];
    if (!input) return text;
    try {
      return input(text);
    } catch (err) {
      if (err instanceof SqlError) throw new SqlError(err.code, `column "${this.stream.columns[position].name}": ${err.message}`, { detail: err.detail });
      throw err;
    }
  }

  private valueTexts(message: KafkaMessage): (string | null | undefined)[] {
    const text = messageText(message);
    if (this.format === 'json') return this.jsonTexts(text);
    const fields = decodeLine(text.endsWith('\n') ? text : `${text}\n`, this.copyOptions);
    if (!fields) throw new SqlError(SqlState.badCopyFileFormat, 'message holds no row');
    return fields;
  }

  /** A stream whose only column is json/jsonb takes the whole message, once it is known to be JSON. */
  private jsonTexts(text: string): (string | null | undefined)[] {
    parseJson(text);
    return [text];
  }
}

function messageText(message: KafkaMessage): string {
  if (message.value === null || message.value.length === 0) throw new SqlError(SqlState.invalidTextRepresentation, 'empty message');
  return message.value.toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SqlError(SqlState.invalidTextRepresentation, `invalid JSON: ${(err as Error).message}`);
  }
}

function jsonObject(text: string): Record<string, unknown> {
  const parsed = parseJson(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SqlError(SqlState.invalidTextRepresentation, 'message is not a JSON object', { hint: 'Each message must be an object whose keys are the stream\'s column names.' });
  }
  return parsed as Record<string, unknown>;
}

/** A JSON field as PostgreSQL text input for the column (objects and arrays as JSON text). */
function jsonFieldText(value: unknown, typeName: string): string | null | undefined {
  if (value === undefined || value === null) return null;
  switch (typeof value) {
    case 'string':
      return typeName === 'json' || typeName === 'jsonb' ? JSON.stringify(value) : value;
    case 'number':
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      // A JSON array into an array column (int4[], text[]…) is that array, in PostgreSQL's spelling.
      return Array.isArray(value) && typeName.startsWith('_') ? jsonArrayLiteral(value) : JSON.stringify(value);
  }
}

