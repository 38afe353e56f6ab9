/** File operations Node's fs lacks: device nodes, fifos and extended attributes. */
import { spawnSync } from 'node:child_process';
import { getAttributeSync, listAttributesSync, setAttributeSync } from '@napi-rs/xattr';
import { InternalError } from '@boxd/api';

/** `mknod` for char/block devices and fifos; rare in layers, so a child process is cheap enough. */
export function makeNode(path: string, kind: 'c' | 'b' | 'p', mode: number, major = 0, minor = 0): void {
  const args = ['-m', (mode & 0o7777).toString(8), path, kind];
  if (kind !== 'p') args.push(String(major), String(minor));
  const result = spawnSync('mknod', args, { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new InternalError(`mknod ${path}: ${result.error?.message ?? result.stderr.trim()}`);
  }
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
