/** The tar stream of the changes between two trees, as OCI layer changesets express them. */
import { closeSync, constants, lstatSync, openSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { DataLossError } from '@boxd/api';
import { readXattrs } from '../apply/special-files.js';
import { changes } from './changes.js';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader, type TypeFlag } from './tar-header.js';

const READ_CHUNK = 1 << 20;
const BATCH = 256 << 10;

function typeFlag(stat: BigIntStats): TypeFlag | undefined {
  if (stat.isFile()) return '0';
  if (stat.isDirectory()) return '5';
  if (stat.isSymbolicLink()) return '2';
  if (stat.isCharacterDevice()) return '3';
  if (stat.isBlockDevice()) return '4';
  if (stat.isFIFO()) return '6';
  return undefined;
}

function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** Collects small pieces (headers) into bigger chunks for the compressor. */
class Batcher {
  private pieces: Buffer[] = [];
  private length = 0;

  add(piece: Buffer): Buffer | undefined {
    this.pieces.push(piece);
    this.length += piece.length;
    return this.length >= BATCH ? this.flush() : undefined;
  }

  flush(): Buffer | undefined {
    if (this.length === 0) return undefined;
    const out = Buffer.concat(this.pieces, this.length);
    this.pieces = [];
    this.length = 0;
    return out;
  }
}

export interface DiffTarOptions {
  /** mtime of whiteout entries, in whole seconds. */
  whiteoutTime: number;
}

/**
 * The diff `lower` → `upper` as tar bytes. Deleted paths become empty `.wh.`
 * files; every changed path has its parent directories before it; files
 * hard-linked together within the diff stay hard links.
 */
export function* diffTar(lower: string, upper: string, options: DiffTarOptions): Generator<Buffer> {
  const batch = new Batcher();
  const emittedDirs = new Set<string>();
  const linked = new Map<string, string>();

  function* emitParents(path: string): Generator<Buffer> {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (emittedDirs.has(dir)) continue;
      emittedDirs.add(dir);
      const out = batch.add(encodeHeader(headerFor(upper, dir, lstatDir(upper, dir))!));
      if (out) yield out;
    }
  }

  for (const change of changes(lower, upper)) {
    yield* emitParents(change.path);
    if (change.kind === 'delete') {
      const slash = change.path.lastIndexOf('/');
      const name = `${change.path.slice(0, slash + 1)}.wh.${change.path.slice(slash + 1)}`;
      const out = batch.add(encodeHeader({ name, type: '0', mode: 0, uid: 0, gid: 0, size: 0n, mtime: options.whiteoutTime }));
      if (out) yield out;
      continue;
    }
    const header = headerFor(upper, change.path, change.stat);
    if (!header) continue;
    if (header.type === '5') emittedDirs.add(change.path);
    if (header.type === '0' && change.stat.nlink > 1n) {
      const key = `${change.stat.dev}:${change.stat.ino}`;
      const first = linked.get(key);
      if (first !== undefined) {
        const out = batch.add(encodeHeader({ ...header, type: '1', size: 0n, linkname: first }));
        if (out) yield out;
        continue;
      }
      linked.set(key, change.path);
    }
    const out = batch.add(encodeHeader(header));
    if (out) yield out;
    if (header.type === '0' && header.size > 0n) {
      const pending = batch.flush();
      if (pending) yield pending;
      yield* fileContent(join(upper, change.path), header.size, change.path);
      const pad = padding(header.size);
      if (pad.length > 0) batch.add(pad);
    }
  }
  batch.add(END_OF_ARCHIVE);
  const rest = batch.flush();
  if (rest) yield rest;
}

function lstatDir(root: string, path: string): BigIntStats {
  return lstatSync(join(root, path), { bigint: true });
}

function headerFor(root: string, path: string, stat: BigIntStats): TarHeader | undefined {
  const type = typeFlag(stat);
  if (!type) return undefined;
  const full = join(root, path);
  return {
    name: type === '5' ? `${path}/` : path,
    type,
    mode: Number(stat.mode & 0o7777n),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    size: type === '0' ? stat.size : 0n,
    // Whole seconds, as containerd writes them: a sub-second part is not kept.
    mtime: Number(stat.mtimeNs / 1_000_000_000n),
    linkname: type === '2' ? readlinkSync(full) : undefined,
    devmajor: type === '3' || type === '4' ? major(stat.rdev) : undefined,
    devminor: type === '3' || type === '4' ? minor(stat.rdev) : undefined,
    xattrs: readXattrs(full),
  };
}

function* fileContent(path: string, size: bigint, name: string): Generator<Buffer> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let left = size;
    while (left > 0n) {
      const want = left < BigInt(READ_CHUNK) ? Number(left) : READ_CHUNK;
      const chunk = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, chunk, got, want - got, null);
        if (n === 0) throw new DataLossError(`diff: "${name}" shrank while it was read`);
        got += n;
      }
      left -= BigInt(want);
      yield chunk;
    }
  } finally {
    closeSync(fd);
  }
}
