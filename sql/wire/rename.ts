/**
 * Several clients share one embedded backend, so each client's named
 * prepared statements and portals are renamed with a per-client prefix before
 * they are forwarded. These rewrite the name fields of raw frontend messages.
 */

/** The backend name of a client's statement or portal (the unnamed one stays unnamed). */
export function backendName(prefix: string, name: string): string {
  return name === '' ? '' : `${prefix}${name}`;
}

function cstringEnd(buf: Buffer, from: number): number {
  const end = buf.indexOf(0, from);
  if (end < 0) throw new Error('unterminated string in protocol message');
  return end;
}

/** Rebuilds a typed message replacing the leading cstrings (count of them) after `skip` body bytes. */
function renameLeading(raw: Buffer, skip: number, count: number, rename: (name: string) => string): Buffer {
  const parts: Buffer[] = [];
  let at = 5 + skip;
  parts.push(raw.subarray(5, at));
  for (let i = 0; i < count; i++) {
    const end = cstringEnd(raw, at);
    parts.push(Buffer.from(rename(raw.toString('utf8', at, end)), 'utf8'), Buffer.from([0]));
    at = end + 1;
  }
  parts.push(raw.subarray(at));
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header[0] = raw[0];
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** Parse ('P'): statement name first. Execute ('E'): portal name first. */
export function renameFirst(raw: Buffer, rename: (name: string) => string): Buffer {
  return renameLeading(raw, 0, 1, rename);
}

/** Bind ('B'): portal name, then statement name. */
export function renameBind(raw: Buffer, rename: (name: string) => string): Buffer {
  return renameLeading(raw, 0, 2, rename);
}

/** Describe ('D') and Close ('C'): a kind byte, then the name. */
export function renameAfterKind(raw: Buffer, rename: (name: string) => string): Buffer {
  return renameLeading(raw, 1, 1, rename);
}
