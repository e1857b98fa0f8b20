import type { StoreConnection } from '../../engine/store.ts';
import { binaryTexts, readsAsText, utf8Text } from '../binary-values.ts';

/**
 * Bound parameters of statements Sluice runs itself, as PostgreSQL text.
 * Text values must be valid UTF-8 (they are refused, never repaired). Binary
 * values of the common scalar types are read here; every other binary value
 * (numeric, timestamps, uuid, bytea, arrays, composites, enums, domains…) is
 * read by PostgreSQL itself with the type's receive function and printed by
 * its output function, in one round trip for the whole Bind.
 */
export async function parameterTexts(
  conn: StoreConnection,
  params: readonly (Buffer | null)[],
  formats: readonly number[],
  typeOids: readonly number[],
): Promise<(string | null)[]> {
  const texts: (string | null)[] = new Array(params.length).fill(null);
  const binary: number[] = [];
  params.forEach((value, i) => {
    if (value === null) return;
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
    const oid = typeOids[i] ?? 0;
    if (format !== 1 || readsAsText(oid)) texts[i] = utf8Text(value);
    else binary.push(i);
  });
  if (binary.length) {
    const decoded = await binaryTexts(conn, binary.map((i) => params[i]), binary.map((i) => typeOids[i] ?? 0));
    binary.forEach((i, j) => (texts[i] = decoded[j]));
  }
  return texts;
}

