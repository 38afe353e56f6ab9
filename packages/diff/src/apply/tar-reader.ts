/**
 * A push parser for tar streams: bytes go in as they are decoded, entries
 * come out through synchronous callbacks. No per-entry promise or stream
 * object, and file data is handed on as slices of the input chunks, so an
 * apply costs little more than its system calls.
 *
 * Formats: POSIX ustar (with prefix), GNU (long names and link names,
 * base-256 numbers), PAX extended headers, old V7. As containerd (Go's
 * archive/tar): PAX global headers are ignored, header-only types (links,
 * directories, devices, fifos) carry no data whatever their size field says,
 * and two zero blocks end the archive (what follows is not parsed).
 */
import { InvalidArgumentError } from '@boxd/api';

export type EntryType = 'file' | 'link' | 'symlink' | 'directory' | 'block-device' | 'character-device' | 'fifo';

export interface TarEntry {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (0 for every type but files). */
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Seconds since the epoch, with the PAX fraction when there is one. */
  mtime: number;
  atime?: number;
  xattrs: Map<string, Buffer>;
}

/** Receives the entries of a tar, in order. A throw stops the parse. */
export interface TarSink {
  entry(entry: TarEntry): void;
  /** A piece of the current entry's data (a view of the input: copy it to keep it). */
  data(chunk: Buffer): void;
  /** After the last byte of the current entry's data. */
  entryEnd(): void;
}

const BLOCK = 512;
const XATTR_PREFIX = 'SCHILY.xattr.';
const TEXT_KEYS = new Set(['path', 'linkpath', 'size', 'mtime', 'atime', 'uid', 'gid', 'uname', 'gname']);
// Entries whose data must be read into memory (names, PAX records) are bounded.
const MAX_META_SIZE = 1 << 20;

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

type PaxRecords = Map<string, string | Buffer>;

function invalid(message: string): Error {
  return new InvalidArgumentError(`invalid tar: ${message}`);
}

/** PAX records `"<len> <key>=<value>\n"`; values of non-standard keys stay bytes (binary xattrs). */
export function decodePaxRecords(buf: Buffer): PaxRecords {
  const records: PaxRecords = new Map();
  let at = 0;
  while (at < buf.length) {
    const space = buf.indexOf(0x20, at);
    if (space < 0) break;
    const length = Number.parseInt(buf.toString('latin1', at, space), 10);
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > buf.length) throw invalid('malformed PAX record');
    const record = buf.subarray(space + 1, at + length - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw invalid('PAX record without "="');
    const key = record.toString('utf8', 0, eq);
    const value = Buffer.from(record.subarray(eq + 1));
    records.set(key, TEXT_KEYS.has(key) ? value.toString('utf8') : value);
    at += length;
  }
  return records;
}

/** A NUL-terminated text field. */
function text(block: Buffer, offset: number, length: number): string {
  const end = block.indexOf(0, offset);
  return block.toString('utf8', offset, end < 0 || end > offset + length ? offset + length : end);
}

/** An octal field (spaces and NULs around it), or GNU base-256 when the top bit is set. */
function number(block: Buffer, offset: number, length: number, field: string): number {
  if (block[offset]! & 0x80) {
    let value = block[offset]! & 0x3f;
    if (block[offset]! & 0x40) throw invalid(`negative ${field}`);
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + block[i]!;
    if (!Number.isSafeInteger(value)) throw invalid(`${field} out of range`);
    return value;
  }
  let value = 0;
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw invalid(`bad ${field} field`);
    value = value * 8 + (c - 0x30);
  }
  return value;
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function checksumMatches(block: Buffer): boolean {
  const stored = number(block, 148, 8, 'checksum');
  let unsigned = 8 * 0x20;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    unsigned += block[i]!;
    signed += (block[i]! << 24) >> 24;
  }
  return stored === unsigned || stored === signed;
}

function paxNumber(pax: PaxRecords | undefined, key: string): number | undefined {
  const value = pax?.get(key);
  if (typeof value !== 'string' || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

type State =
  | { kind: 'header' }
  | { kind: 'data'; remaining: number; padding: number }
  | { kind: 'meta'; type: string; parts: Buffer[]; remaining: number; padding: number }
  | { kind: 'skip'; remaining: number }
  | { kind: 'ended' };

export class TarReader {
  private state: State = { kind: 'header' };
  /** A header block split across input chunks. */
  private readonly partial = Buffer.alloc(BLOCK);
  private partialLength = 0;
  private zeroBlocks = 0;
  private offset = 0;
  // Extended metadata for the next entry.
  private pax: PaxRecords | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;

  constructor(private readonly sink: TarSink) {}

  /** Parses `chunk`, calling the sink synchronously. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const state = this.state;
      switch (state.kind) {
        case 'ended':
          return;
        case 'header': {
          if (this.partialLength === 0 && chunk.length - at >= BLOCK) {
            this.header(chunk.subarray(at, at + BLOCK), this.offset);
            at += BLOCK;
            this.offset += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.partialLength, chunk.length - at);
            chunk.copy(this.partial, this.partialLength, at, at + n);
            this.partialLength += n;
            at += n;
            this.offset += n;
            if (this.partialLength === BLOCK) {
              this.partialLength = 0;
              this.header(this.partial, this.offset - BLOCK);
            }
          }
          break;
        }
        case 'data': {
          const n = Math.min(state.remaining, chunk.length - at);
          if (n > 0) this.sink.data(chunk.subarray(at, at + n));
          at += n;
          this.offset += n;
          state.remaining -= n;
          if (state.remaining === 0) {
            this.sink.entryEnd();
            this.state = state.padding > 0 ? { kind: 'skip', remaining: state.padding } : { kind: 'header' };
          }
          break;
        }
        case 'meta': {
          const n = Math.min(state.remaining, chunk.length - at);
          state.parts.push(Buffer.from(chunk.subarray(at, at + n)));
          at += n;
          this.offset += n;
          state.remaining -= n;
          if (state.remaining === 0) {
            this.meta(state.type, Buffer.concat(state.parts));
            this.state = state.padding > 0 ? { kind: 'skip', remaining: state.padding } : { kind: 'header' };
          }
          break;
        }
        case 'skip': {
          const n = Math.min(state.remaining, chunk.length - at);
          at += n;
          this.offset += n;
          state.remaining -= n;
          if (state.remaining === 0) this.state = { kind: 'header' };
          break;
        }
      }
    }
  }

  /** The input is over: fine between entries (with or without end-of-archive blocks), an error inside one. */
  end(): void {
    if (this.state.kind === 'ended' || (this.state.kind === 'header' && this.partialLength === 0 && !this.pending())) return;
    throw invalid('stream ends inside an entry (truncated layer)');
  }

  private pending(): boolean {
    return this.pax !== undefined || this.longName !== undefined || this.longLink !== undefined;
  }

  /** A header block that starts at byte `offset` of the tar. */
  private header(block: Buffer, offset: number): void {
    if (isZeroBlock(block)) {
      if (++this.zeroBlocks === 2) this.state = { kind: 'ended' };
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumMatches(block)) throw invalid(`header checksum mismatch at offset ${offset} (not a tar, or corrupt)`);
    const flag = String.fromCharCode(block[156]!);
    const size = number(block, 124, 12, 'size');
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (flag === 'x' || flag === 'L' || flag === 'K' || flag === 'g') {
      if (size > MAX_META_SIZE) throw invalid(`extended header of ${size} bytes at offset ${offset}`);
      if (size === 0) this.meta(flag, Buffer.alloc(0));
      else this.state = { kind: 'meta', type: flag, parts: [], remaining: size, padding };
      return;
    }
    const entry = this.entryOf(block, flag, size);
    this.sink.entry(entry);
    if (entry.size > 0) {
      this.state = { kind: 'data', remaining: entry.size, padding: (BLOCK - (entry.size % BLOCK)) % BLOCK };
    } else {
      this.sink.entryEnd();
    }
  }

  private meta(type: string, body: Buffer): void {
    if (type === 'x') this.pax = decodePaxRecords(body);
    else if (type === 'L') this.longName = text(body, 0, body.length);
    else if (type === 'K') this.longLink = text(body, 0, body.length);
    // 'g': containerd ignores PAX global headers, and so do we.
  }

  private entryOf(block: Buffer, flag: string, headerSize: number): TarEntry {
    const pax = this.pax;
    const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
    let name = text(block, 0, 100);
    if (ustar && block[345] !== 0) name = `${text(block, 345, 155)}/${name}`;
    name = (pax?.get('path') as string | undefined) ?? this.longName ?? name;
    const linkname = (pax?.get('linkpath') as string | undefined) ?? this.longLink ?? text(block, 157, 100);
    this.pax = this.longName = this.longLink = undefined;

    let type = TYPES[flag];
    if (!type) throw invalid(`unsupported entry type "${flag}" for "${name}"`);
    if (type === 'file' && flag !== '7' && name.endsWith('/')) type = 'directory';
    const size = type === 'file' ? (paxNumber(pax, 'size') ?? headerSize) : 0;
    if (!Number.isSafeInteger(size) || size < 0) throw invalid(`bad size for "${name}"`);

    const xattrs = new Map<string, Buffer>();
    for (const [key, value] of pax ?? []) {
      if (key.startsWith(XATTR_PREFIX) && Buffer.isBuffer(value)) xattrs.set(key.slice(XATTR_PREFIX.length), value);
    }
    return {
      name,
      type,
      mode: number(block, 100, 8, 'mode'),
      uid: paxNumber(pax, 'uid') ?? number(block, 108, 8, 'uid'),
      gid: paxNumber(pax, 'gid') ?? number(block, 116, 8, 'gid'),
      size,
      linkname,
      devmajor: number(block, 329, 8, 'devmajor'),
      devminor: number(block, 337, 8, 'devminor'),
      mtime: paxNumber(pax, 'mtime') ?? number(block, 136, 12, 'mtime'),
      atime: paxNumber(pax, 'atime'),
      xattrs,
    };
  }
}
