import { SqlError, SqlState } from '../../engine/errors.ts';

/**
 * Bound parameters of statements Sluice runs itself, as text. Binary values
 * are converted for the types clients commonly send in binary.
 */
export function parameterTexts(params: readonly (Buffer | null)[], formats: readonly number[], typeOids: readonly number[]): (string | null)[] {
  return params.map((value, i) => {
    if (value === null) return null;
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
    return format === 1 ? binaryToText(value, typeOids[i] ?? 0) : value.toString('utf8');
  });
}

function binaryToText(value: Buffer, typeOid: number): string {
  switch (typeOid) {
    case 16:
      return value[0] ? 't' : 'f';
    case 20:
      return value.readBigInt64BE(0).toString();
    case 21:
      return String(value.readInt16BE(0));
    case 23:
      return String(value.readInt32BE(0));
    case 700:
      return String(value.readFloatBE(0));
    case 701:
      return String(value.readDoubleBE(0));
    case 0:
    case 25:
    case 1042:
    case 1043:
    case 114:
    case 3802:
      return typeOid === 3802 && value[0] === 1 ? value.toString('utf8', 1) : value.toString('utf8');
    default:
      throw new SqlError(SqlState.featureNotSupported, `binary format for parameters of type oid ${typeOid} is not supported for writes into streams`, {
        hint: 'Send the parameter in text format.',
      });
  }
}
