import { describe, expect, it } from 'vitest';
import { BinaryCopyDecoder, type BinaryRow } from '../../engine/formats/index.ts';

/** A binary COPY stream as PostgreSQL's COPY TO (FORMAT binary) writes it. */
function binaryCopy(rows: BinaryRow[], extension = Buffer.alloc(0)): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')];
  const header = Buffer.alloc(8);
  header.writeInt32BE(0, 0);
  header.writeInt32BE(extension.length, 4);
  parts.push(header, extension);
  for (const row of rows) {
    const count = Buffer.alloc(2);
    count.writeInt16BE(row.length);
    parts.push(count);
    for (const field of row) {
      const length = Buffer.alloc(4);
      length.writeInt32BE(field === null ? -1 : field.length);
      parts.push(length);
      if (field) parts.push(field);
    }
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

function decodeAll(data: Buffer, columns: number, cut: number[]): BinaryRow[] {
  const rows: BinaryRow[] = [];
  const decoder = new BinaryCopyDecoder(columns, (r) => rows.push(...r));
  let from = 0;
  for (const at of [...cut, data.length]) {
    decoder.push(data.subarray(from, at));
    from = at;
  }
  decoder.end();
  return rows;
}

const sample: BinaryRow[] = [
  [Buffer.from('abc'), Buffer.from([0, 0, 0, 7]), null],
  [Buffer.alloc(0), null, Buffer.from([1])],
  [Buffer.from('é'), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0])],
];

describe('binary COPY decoding', () => {
  it('reads every tuple, empty values and NULLs apart, however the bytes are split', () => {
    const data = binaryCopy(sample, Buffer.from('ext'));
    expect(decodeAll(data, 3, [])).toEqual(sample);
    for (let at = 1; at < data.length; at++) expect(decodeAll(data, 3, [at])).toEqual(sample);
    expect(decodeAll(data, 3, Array.from({ length: data.length - 1 }, (_, i) => i + 1))).toEqual(sample);
  });

  it('refuses what PostgreSQL refuses, with 22P04', () => {
    const wrongCount = binaryCopy([[Buffer.from('x')]]);
    expect(() => decodeAll(wrongCount, 2, [])).toThrow(expect.objectContaining({ code: '22P04', message: 'row field count is 1, expected 2' }));
    expect(() => decodeAll(Buffer.from('not binary copy data'), 1, [])).toThrow(expect.objectContaining({ code: '22P04', message: 'COPY file signature not recognized' }));
    const truncated = binaryCopy(sample).subarray(0, 40);
    expect(() => decodeAll(truncated, 3, [])).toThrow(expect.objectContaining({ code: '22P04', message: 'unexpected EOF in COPY data' }));
    const trailing = Buffer.concat([binaryCopy(sample), Buffer.from([0])]);
    expect(() => decodeAll(trailing, 3, [])).toThrow(expect.objectContaining({ code: '22P04', message: 'received copy data after EOF marker' }));
  });
});
