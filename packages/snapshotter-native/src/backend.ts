/**
 * The native layout: `<root>/snapshots/<id>` is a snapshot's complete tree.
 * An active snapshot starts as a full copy of its parent; a view needs no
 * copy and binds its parent read-only.
 */
import { chmod } from 'node:fs/promises';
import { Kind, diskUsage, type Mount, type SnapshotBackend } from '@boxd/snapshot-metadata';
import { copyTree } from './copy.js';

export function nativeMounts(kind: Kind, dir: string, parentDirs: readonly string[]): Mount[] {
  const readOnly = kind === Kind.VIEW;
  const source = readOnly && parentDirs.length > 0 ? parentDirs[0]! : dir;
  return [{ type: 'bind', source, target: '', options: [readOnly ? 'ro' : 'rw', 'rbind'] }];
}

export function nativeBackend(): SnapshotBackend {
  return {
    async populate(dir, kind, parentDirs) {
      // The directory becomes a container's `/`: it must be traversable by everyone.
      await chmod(dir, 0o755);
      if (kind === Kind.ACTIVE && parentDirs.length > 0) await copyTree(parentDirs[0]!, dir);
    },
    mounts: nativeMounts,
    usage: (dir, signal) => diskUsage(dir, signal),
  };
}
