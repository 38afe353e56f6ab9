/**
 * The changes from a lower tree to an upper tree, found by walking both in
 * sorted order (as containerd's walking differ does): parents come before
 * their children and the order is the same on every run.
 */
import { closeSync, constants, lstatSync, openSync, readdirSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { readXattrs } from '../apply/special-files.js';

export type Change =
  | { kind: 'delete'; path: string }
  | { kind: 'add'; path: string; stat: BigIntStats }
  | { kind: 'modify'; path: string; stat: BigIntStats };

function lstatIfExists(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function names(dir: string): string[] {
  return readdirSync(dir).sort();
}

function sameXattrs(a: string, b: string): boolean {
  const x = readXattrs(a);
  const y = readXattrs(b);
  if (x.size !== y.size) return false;
  for (const [key, value] of x) if (!y.get(key)?.equals(value)) return false;
  return true;
}

function sameContent(a: string, b: string, size: bigint): boolean {
  const fa = openSync(a, constants.O_RDONLY | constants.O_NOFOLLOW);
  const fb = openSync(b, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const ba = Buffer.allocUnsafe(1 << 16);
    const bb = Buffer.allocUnsafe(1 << 16);
    for (let left = size; left > 0n; ) {
      const na = readSync(fa, ba, 0, ba.length, null);
      const nb = readSync(fb, bb, 0, bb.length, null);
      if (na !== nb || na === 0 || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      left -= BigInt(na);
    }
    return true;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/** Whether the upper entry is the lower one unchanged (containerd's rules: mode, owner, device, size, mtime, content when mtimes are truncated). */
function sameEntry(lowerPath: string, l: BigIntStats, upperPath: string, u: BigIntStats): boolean {
  if (l.dev === u.dev && l.ino === u.ino) return true;
  if (l.mode !== u.mode || l.uid !== u.uid || l.gid !== u.gid || l.rdev !== u.rdev) return false;
  if (!sameXattrs(lowerPath, upperPath)) return false;
  if (u.isDirectory()) return true;
  if (l.size !== u.size) return false;
  const SECOND = 1_000_000_000n;
  if (l.mtimeNs / SECOND !== u.mtimeNs / SECOND) return false;
  const ln = l.mtimeNs % SECOND;
  const un = u.mtimeNs % SECOND;
  if (ln === 0n && un === 0n) {
    if (u.isSymbolicLink()) return readlinkSync(lowerPath) === readlinkSync(upperPath);
    if (u.size === 0n || !u.isFile()) return true;
    return sameContent(lowerPath, upperPath, u.size);
  }
  return ln === un;
}

/** Every entry below `dir` of the upper tree, as additions. */
function* additions(upper: string, rel: string): Generator<Change> {
  for (const name of names(join(upper, rel))) {
    const path = rel ? `${rel}/${name}` : name;
    const stat = lstatSync(join(upper, path), { bigint: true });
    if (stat.isSocket()) continue;
    yield { kind: 'add', path, stat };
    if (stat.isDirectory()) yield* additions(upper, path);
  }
}

/** The changes turning `lower` into `upper`, below the relative directory `rel`. */
export function* changes(lower: string, upper: string, rel = ''): Generator<Change> {
  const lowerNames = new Set(names(join(lower, rel)));
  const all = [...new Set([...lowerNames, ...names(join(upper, rel))])].sort();
  for (const name of all) {
    const path = rel ? `${rel}/${name}` : name;
    const upperPath = join(upper, path);
    const lowerPath = join(lower, path);
    const u = lstatIfExists(upperPath);
    const l = lowerNames.has(name) ? lstatIfExists(lowerPath) : undefined;
    if (!u) {
      if (l && !l.isSocket()) yield { kind: 'delete', path };
      continue;
    }
    if (u.isSocket()) continue;
    if (!l || l.isSocket()) {
      yield { kind: 'add', path, stat: u };
      if (u.isDirectory()) yield* additions(upper, path);
      continue;
    }
    if (u.isDirectory() && l.isDirectory()) {
      if (!sameEntry(lowerPath, l, upperPath, u)) yield { kind: 'modify', path, stat: u };
      yield* changes(lower, upper, path);
    } else if (u.isDirectory()) {
      yield { kind: 'modify', path, stat: u };
      yield* additions(upper, path);
    } else if (!sameEntry(lowerPath, l, upperPath, u)) {
      yield { kind: 'modify', path, stat: u };
    }
  }
}
