/** Building blocks for the SQL the engine sends to the serving store. */

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export function qualifiedName(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * A PostgreSQL array literal (`{…}`) from values already in PostgreSQL text
 * form. Every element is quoted, so any text survives.
 */
export function arrayLiteral(texts: readonly (string | null)[]): string {
  const parts = new Array<string>(texts.length);
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    parts[i] = text === null ? 'NULL' : quoteArrayElement(text);
  }
  return `{${parts.join(',')}}`;
}

/**
 * A PostgreSQL array literal from a JSON array (nested arrays are dimensions;
 * objects become their JSON text, for json[]/jsonb[] columns).
 */
export function jsonArrayLiteral(values: readonly unknown[]): string {
  const parts = values.map((v): string => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v)) return jsonArrayLiteral(v);
    if (typeof v === 'string') return quoteArrayElement(v);
    if (typeof v === 'object') return quoteArrayElement(JSON.stringify(v));
    return String(v);
  });
  return `{${parts.join(',')}}`;
}

function quoteArrayElement(text: string): string {
  if (text.indexOf('"') < 0 && text.indexOf('\\') < 0) return `"${text}"`;
  return `"${text.replace(/[\\"]/g, '\\$&')}"`;
}
