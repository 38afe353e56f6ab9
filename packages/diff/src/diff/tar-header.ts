/**
 * Encoding of tar headers: ustar, with PAX records for whatever ustar cannot
 * hold (long or non-ASCII names, big ids and sizes, xattrs). Values stay
 * bytes, so binary xattrs such as security.capability survive.
 */

export type TypeFlag = '0' | '1' | '2' | '3' | '4' | '5' | '6';

export interface TarHeader {
  name: string;
  type: TypeFlag;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  /** Whole seconds. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

export const BLOCK = 512;
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777n;

function isAscii(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

export function padding(size: bigint | number): Buffer {
  const rest = Number(BigInt(size) % BigInt(BLOCK));
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

function writeOctal(block: Buffer, value: number | bigint, offset: number, width: number): void {
  block.write(value.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'ascii');
}

/** Splits a long ASCII name into ustar's prefix and name fields, if it fits. */
function splitName(name: string): { prefix: string; name: string } | undefined {
  if (name.length <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return { prefix, name: rest };
  }
  return undefined;
}

function ustarBlock(h: TarHeader, name: { prefix: string; name: string }, linkname: string, size: bigint, uid: number, gid: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name.name, 0, 100, 'utf8');
  writeOctal(block, h.mode & 0o7777, 100, 8);
  writeOctal(block, uid, 108, 8);
  writeOctal(block, gid, 116, 8);
  writeOctal(block, size, 124, 12);
  writeOctal(block, Math.max(0, h.mtime), 136, 12);
  block.write(' '.repeat(8), 148, 8, 'ascii');
  block.write(h.type, 156, 1, 'ascii');
  block.write(linkname, 157, 100, 'utf8');
  block.write('ustar\x0000', 257, 8, 'ascii');
  writeOctal(block, h.devmajor ?? 0, 329, 8);
  writeOctal(block, h.devminor ?? 0, 337, 8);
  block.write(name.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return block;
}

/** The header blocks of one entry (a PAX header first when needed). */
export function encodeHeader(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  const linkname = h.linkname ?? '';
  let name = isAscii(h.name) ? splitName(h.name) : undefined;
  if (!name) {
    records.push(paxRecord('path', Buffer.from(h.name)));
    name = { prefix: '', name: Buffer.from(h.name).subarray(0, 100).toString('latin1').replace(/[^\x20-\x7e]/g, '_') };
  }
  let ustarLink = linkname;
  if (!isAscii(linkname) || linkname.length > 100) {
    records.push(paxRecord('linkpath', Buffer.from(linkname)));
    ustarLink = '';
  }
  let size = h.size;
  if (size > MAX_OCTAL_11) {
    records.push(paxRecord('size', Buffer.from(size.toString())));
    size = 0n;
  }
  let { uid, gid } = h;
  if (uid > MAX_OCTAL_7) {
    records.push(paxRecord('uid', Buffer.from(String(uid))));
    uid = 0;
  }
  if (gid > MAX_OCTAL_7) {
    records.push(paxRecord('gid', Buffer.from(String(gid))));
    gid = 0;
  }
  for (const [key, value] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  const entry = ustarBlock(h, name, ustarLink, size, uid, gid);
  if (records.length === 0) return entry;
  const body = Buffer.concat(records);
  const base = h.name.replace(/\/+$/, '').split('/').pop() ?? '';
  const paxName = `PaxHeaders.0/${base}`.slice(0, 100);
  const paxHeader = ustarBlock({ name: paxName, type: 'x' as TypeFlag, mode: 0o644, uid: 0, gid: 0, size: BigInt(body.length), mtime: h.mtime }, { prefix: '', name: isAscii(paxName) ? paxName : 'PaxHeaders.0/entry' }, '', BigInt(body.length), 0, 0);
  return Buffer.concat([paxHeader, body, padding(body.length), entry]);
}

export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
