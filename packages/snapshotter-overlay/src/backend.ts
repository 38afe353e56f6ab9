/**
 * The overlayfs layout: `<root>/snapshots/<id>/fs` is a snapshot's upper
 * directory (its own files), `<root>/snapshots/<id>/work` overlay's work
 * directory (active snapshots only). A snapshot's full tree is its `fs` over
 * the `fs` of every ancestor.
 */
import { chmodSync, existsSync, lchownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Kind, diskUsage, type Mount, type SnapshotBackend } from '@boxd/snapshot-metadata';

export interface OverlayOptions {
  /**
   * Pass `index=off`, so layers can be mounted by several overlays at once
   * without the inode index tying them to one. Defaults to whether the kernel
   * knows the option.
   */
  indexOff?: boolean;
}

const upper = (dir: string) => join(dir, 'fs');
const work = (dir: string) => join(dir, 'work');

export function kernelHasOverlayIndex(): boolean {
  return existsSync('/sys/module/overlay/parameters/index');
}

export function overlayMounts(kind: Kind, dir: string, parentDirs: readonly string[], indexOff: boolean): Mount[] {
  const readOnly = kind === Kind.VIEW;
  // Overlay needs a lower layer; a lone layer is bound instead.
  if (parentDirs.length === 0) return [bind(upper(dir), readOnly)];
  if (readOnly && parentDirs.length === 1) return [bind(upper(parentDirs[0]!), true)];
  const options = indexOff ? ['index=off'] : [];
  if (!readOnly) options.push(`workdir=${work(dir)}`, `upperdir=${upper(dir)}`);
  // Nearest parent first: overlay searches lowerdirs left to right.
  options.push(`lowerdir=${parentDirs.map(upper).join(':')}`);
  return [{ type: 'overlay', source: 'overlay', target: '', options }];
}

function bind(source: string, readOnly: boolean): Mount {
  return { type: 'bind', source, target: '', options: [readOnly ? 'ro' : 'rw', 'rbind'] };
}

export function overlayBackend(options: OverlayOptions = {}): SnapshotBackend {
  const indexOff = options.indexOff ?? kernelHasOverlayIndex();
  return {
    // A handful of metadata operations on a local directory: done synchronously, each
    // takes microseconds, where a trip through libuv's thread pool costs a hundred or more.
    async populate(dir, kind, parentDirs) {
      mkdirSync(upper(dir));
      chmodSync(upper(dir), 0o755);
      if (kind === Kind.ACTIVE) {
        mkdirSync(work(dir));
        chmodSync(work(dir), 0o711);
      }
      // The root of the merged tree keeps the owner the layers below gave it.
      if (parentDirs.length > 0) {
        const below = statSync(upper(parentDirs[0]!));
        lchownSync(upper(dir), below.uid, below.gid);
      }
    },
    mounts: (kind, dir, parentDirs) => overlayMounts(kind, dir, parentDirs, indexOff),
    usage: (dir, signal) => diskUsage(upper(dir), signal),
  };
}
