/**
 * Engine values back to PostgreSQL text, for sending as parameters. Every
 * result parses back to the identical value under the type's input function.
 */
import type { NonNullValue } from './input.ts';

/**
 * The text for `value` as a parameter of type `typeName`. The JS type decides
 * the format, which is right for every type the input functions produce;
 * typeName is kept so type-specific formats can be added without touching callers.
 */
export function toPgText(typeName: string, value: NonNullValue): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return formatFloat(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 't' : 'f';
  }
}

/**
 * Shortest round-trip text of a double: String() is that, except that it
 * prints -0 as "0", and float8in would then lose the sign. NaN, Infinity and
 * -Infinity print as the spellings float8in accepts. A float4 value (an exact
 * float32 in a double) round-trips too: the double's shortest decimal lies far
 * closer to it than half a float32 step, so strtof rounds back to it.
 */
export function formatFloat(value: number): string {
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  return String(value);
}
