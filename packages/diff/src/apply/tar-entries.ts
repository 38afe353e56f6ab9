/**
 * Tar entries from a stream, parsed by tar-stream.
 *
 * tar-stream decodes PAX records as UTF-8 text, which mangles binary xattr
 * values (security.capability); its PAX decoding is replaced per parser with
 * one that keeps record values as bytes.
 */
import { InvalidArgumentError } from '@boxd/api';
import tar from 'tar-stream';
import type { ByteStream } from '../streams.js';

export type EntryType = 'file' | 'link' | 'symlink' | 'directory' | 'block-device' | 'character-device' | 'fifo';

export interface TarEntry {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Seconds since the epoch, with the PAX fraction when there is one. */
  mtime: number;
  atime?: number;
  xattrs: Map<string, Buffer>;
  /**
   * Hands every chunk of the entry's data to `onChunk` (synchronously, as it
   * arrives) and resolves at its end. Must be called exactly once per entry.
   */
  read(onChunk: (chunk: Buffer) => void): Promise<void>;
}

const XATTR_PREFIX = 'SCHILY.xattr.';
const TEXT_KEYS = new Set(['path', 'linkpath', 'size', 'mtime', 'atime', 'uid', 'gid', 'uname', 'gname']);

type PaxRecords = Record<string, string | Buffer>;

/** PAX records `"<len> <key>=<value>\n"`; values of non-standard keys stay bytes. */
export function decodePaxRecords(buf: Buffer): PaxRecords {
  const records: PaxRecords = {};
  let at = 0;
  while (at < buf.length) {
    const space = buf.indexOf(0x20, at);
    if (space < 0) break;
    const length = Number.parseInt(buf.toString('latin1', at, space), 10);
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > buf.length) {
      throw new InvalidArgumentError('invalid tar: malformed PAX record');
    }
    const record = buf.subarray(space + 1, at + length - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw new InvalidArgumentError('invalid tar: PAX record without "="');
    const key = record.toString('utf8', 0, eq);
    const value = Buffer.from(record.subarray(eq + 1));
    records[key] = TEXT_KEYS.has(key) ? value.toString('utf8') : value;
    at += length;
  }
  return records;
}

interface ExtractInternals {
  _header: { type: string };
  _paxGlobal: PaxRecords | null;
  _pax: PaxRecords | null;
  _decodeLongHeader(buf: Buffer): void;
}

function keepBinaryPax(extract: tar.Extract): void {
  const internals = extract as unknown as ExtractInternals;
  const original = internals._decodeLongHeader.bind(extract);
  internals._decodeLongHeader = (buf: Buffer) => {
    const type = internals._header.type;
    if (type === 'pax-global-header') internals._paxGlobal = decodePaxRecords(buf);
    else if (type === 'pax-header') internals._pax = { ...(internals._paxGlobal ?? {}), ...decodePaxRecords(buf) };
    else original(buf);
  };
}

function paxNumber(pax: PaxRecords | null | undefined, key: string): number | undefined {
  const value = pax?.[key];
  if (typeof value !== 'string' || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

type EntrySource = AsyncIterable<Buffer> & {
  header: tar.Header;
  on(event: 'data', listener: (chunk: Buffer) => void): void;
  once(event: 'end' | 'close', listener: () => void): void;
  once(event: 'error', listener: (err: Error) => void): void;
};

function toEntry(source: EntrySource): TarEntry {
  const header = source.header;
  const pax = header.pax as PaxRecords | null | undefined;
  let type = header.type as string | null;
  if (type === 'contiguous-file') type = 'file';
  if (!type || !['file', 'link', 'symlink', 'directory', 'block-device', 'character-device', 'fifo'].includes(type)) {
    throw new InvalidArgumentError(`unsupported tar entry type for "${header.name}"`);
  }
  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(pax ?? {})) {
    if (key.startsWith(XATTR_PREFIX) && Buffer.isBuffer(value)) xattrs.set(key.slice(XATTR_PREFIX.length), value);
  }
  if (!Number.isSafeInteger(header.size) || header.size < 0) throw new InvalidArgumentError(`invalid tar: bad size for "${header.name}"`);
  return {
    name: header.name,
    type: type as EntryType,
    mode: header.mode,
    uid: paxNumber(pax, 'uid') ?? header.uid,
    gid: paxNumber(pax, 'gid') ?? header.gid,
    size: header.size,
    linkname: header.linkname ?? '',
    devmajor: header.devmajor,
    devminor: header.devminor,
    mtime: paxNumber(pax, 'mtime') ?? header.mtime.getTime() / 1000,
    atime: paxNumber(pax, 'atime'),
    xattrs,
    read: (onChunk) => readBody(source, onChunk),
  };
}

// Events rather than async iteration: one promise per entry instead of several per chunk.
function readBody(source: EntrySource, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    source.on('data', (chunk) => {
      if (failed) return;
      try {
        onChunk(chunk);
      } catch (err) {
        failed = true;
        reject(err);
      }
    });
    source.once('end', () => failed || resolve());
    source.once('error', (err) => {
      failed = true;
      reject(tarError(err));
    });
    // A stream destroyed before its end (the parser failed) closes without 'end'.
    source.once('close', () => failed || reject(new InvalidArgumentError('invalid tar: stream ends inside an entry (truncated layer)')));
  });
}

function tarError(err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (message === 'Unexpected end of data') return new InvalidArgumentError('invalid tar: stream ends inside an entry (truncated layer)');
  if (/tar header|Header exceeds|Invalid header/i.test(message)) return new InvalidArgumentError(`invalid tar: ${message}`);
  return err instanceof Error ? err : new Error(message);
}

/**
 * Every entry of a tar stream, in order. The caller must consume (or drain)
 * each entry's body before asking for the next. A stream that ends between
 * entries without the end-of-archive blocks is accepted.
 */
export async function* tarEntries(input: ByteStream): AsyncGenerator<TarEntry> {
  const extract = tar.extract({ allowUnknownFormat: true } as never);
  keepBinaryPax(extract);
  let inputError: unknown;
  const pump = (async () => {
    try {
      for await (const chunk of input) {
        if (extract.destroyed) return;
        if (!extract.write(chunk)) await drained(extract);
      }
      extract.end(undefined as never);
    } catch (err) {
      inputError = err;
      extract.destroy(err as Error);
    }
  })();
  try {
    for await (const source of extract) yield toEntry(source as unknown as EntrySource);
  } catch (err) {
    throw inputError ?? tarError(err);
  } finally {
    extract.destroy(undefined as never);
  }
  await pump;
  if (inputError) throw inputError;
}

function drained(extract: tar.Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      extract.off('drain', done);
      extract.off('close', done);
      resolve();
    };
    extract.on('drain', done);
    extract.on('close', done);
  });
}
