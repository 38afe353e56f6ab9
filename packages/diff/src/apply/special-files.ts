/** File operations Node's fs lacks: device nodes, fifos and extended attributes. */
import { chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import { getAttributeSync, listAttributesSync, setAttributeSync } from '@napi-rs/xattr';
import { InternalError } from '@boxd/api';

type Koffi = typeof import('koffi');
type Mknod = (path: string, mode: number, dev: bigint) => number;

let libc: { koffi: Koffi; mknod: Mknod } | undefined;

// mknod(2) through koffi, loaded on first use: every whiteout of an overlay layer is a
// device node, and a layer can hold many; a mknod(1) process per node cost a fork each.
function native(): NonNullable<typeof libc> {
  if (libc) return libc;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const mknod = koffi.load('libc.so.6').func('int mknod(const char *, unsigned int, uint64_t)') as unknown as Mknod;
  libc = { koffi, mknod };
  return libc;
}

const FILE_TYPE = { c: 0o020000, b: 0o060000, p: 0o010000 } as const;

/** glibc's makedev(3). */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** A char or block device or a fifo, with exactly `mode`'s permission bits (no umask). */
export function makeNode(path: string, kind: 'c' | 'b' | 'p', mode: number, major = 0, minor = 0): void {
  const { koffi, mknod } = native();
  if (mknod(path, FILE_TYPE[kind] | (mode & 0o7777), kind === 'p' ? 0n : makedev(major, minor)) !== 0) {
    throw new InternalError(`mknod ${path}: errno ${koffi.errno()}`);
  }
  chmodSync(path, mode & 0o7777);
}

// The @napi-rs/xattr calls use the l*xattr system calls: symlinks are never followed.
export function setXattr(path: string, name: string, value: Uint8Array | string): void {
  setAttributeSync(path, name, value);
}

export function listXattrs(path: string): string[] {
  return listAttributesSync(path);
}

export function getXattr(path: string, name: string): Buffer | null {
  return getAttributeSync(path, name);
}

/** Xattrs a layer may not carry: overlayfs' own metadata, and host security labels. */
export function isPrivateXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name === 'security.selinux';
}

/** All xattrs of a path (not following symlinks) except the private ones. */
export function readXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of listXattrs(path).sort()) {
    if (isPrivateXattr(name)) continue;
    const value = getXattr(path, name);
    if (value) out.set(name, value);
  }
  return out;
}

/** The errno behind an @napi-rs/xattr error ("... (os error 95)"). */
export function xattrErrno(err: unknown): number | undefined {
  const match = /\(os error (\d+)\)/.exec(err instanceof Error ? err.message : String(err));
  return match ? Number(match[1]) : undefined;
}
