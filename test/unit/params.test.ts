import { describe, expect, it } from 'vitest';
import type { QueryResult, StoreConnection } from '../../engine/store.ts';
import { parameterTexts } from '../../sql/wire/params.ts';

/** A store that records what it was asked to decode and answers with fixed texts. */
function recordingStore(answer: string[]): { conn: StoreConnection; asked: { sql: string; params: unknown[]; types?: readonly number[] }[] } {
  const asked: { sql: string; params: unknown[]; types?: readonly number[] }[] = [];
  const conn: StoreConnection = {
    transactionStatus: 'I',
    async exec() {},
    async query(sql, params = [], types): Promise<QueryResult> {
      asked.push({ sql, params: [...params], types });
      return { fields: [], rows: [answer], command: 'SELECT 1' };
    },
  };
  return { conn, asked };
}

const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const float8 = (x: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b;
};

describe('bound parameters of statements Sluice runs', () => {
  it('reads binary integers, floats and booleans itself, in PostgreSQL\'s spellings', async () => {
    const { conn, asked } = recordingStore([]);
    const texts = await parameterTexts(conn, [int4(-7), float8(0.1 + 0.2), float8(-0), float8(NaN), Buffer.from([1]), null], [1], [23, 701, 701, 701, 16, 23]);
    expect(texts).toEqual(['-7', '0.30000000000000004', '-0', 'NaN', 't', null]);
    expect(asked).toHaveLength(0);
  });

  it('hands every other binary value to PostgreSQL in one query, with its type OID, and keeps the order', async () => {
    const { conn, asked } = recordingStore(['1.50', '0b7e5f4c-1d2a-4c3b-9a8e-7f6d5c4b3a21']);
    const numeric = Buffer.from('0002000000000002000100001388', 'hex');
    const uuid = Buffer.from('0b7e5f4c1d2a4c3b9a8e7f6d5c4b3a21', 'hex');
    const texts = await parameterTexts(conn, [Buffer.from('x'), numeric, int4(3), uuid], [0, 1, 1, 1], [25, 1700, 23, 2950]);
    expect(texts).toEqual(['x', '1.50', '3', '0b7e5f4c-1d2a-4c3b-9a8e-7f6d5c4b3a21']);
    expect(asked).toEqual([{ sql: 'SELECT $1::text, $2::text', params: [numeric, uuid], types: [1700, 2950] }]);
  });

  it('refuses text that is not UTF-8 (or holds NUL) with 22021 naming the bytes, as PostgreSQL does; never replaces it', async () => {
    const { conn } = recordingStore([]);
    await expect(parameterTexts(conn, [Buffer.from([0x61, 0xff, 0x62])], [0], [25])).rejects.toMatchObject({ code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0xff' });
    await expect(parameterTexts(conn, [Buffer.from([0x61, 0xe2, 0x28])], [0], [25])).rejects.toMatchObject({ code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0xe2 0x28' });
    await expect(parameterTexts(conn, [Buffer.from([0x61, 0x00])], [1], [25])).rejects.toMatchObject({ code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0x00' });
    expect(await parameterTexts(conn, [Buffer.from('café ✓ 𝄞')], [0], [0])).toEqual(['café ✓ 𝄞']);
  });
});
