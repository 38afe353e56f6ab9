/**
 * The overlayfs layout: `<root>/snapshots/<id>/fs` is a snapshot's upper
 * directory (its own files), `<root>/snapshots/<id>/work` overlay's work
 * directory (active snapshots only). A snapshot's full tree is its `fs` over
 * the `fs` of every ancestor.
 */
import { existsSync } from 'node:fs';
import { chmod, lchown, mkdir, stat } from 'node:fs/promises';
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
    async populate(dir, kind, parentDirs) {
      await mkdir(upper(dir));
      await chmod(upper(dir), 0o755);
      if (kind === Kind.ACTIVE) {
        await mkdir(work(dir));
        await chmod(work(dir), 0o711);
      }
      // The root of the merged tree keeps the owner the layers below gave it.
      if (parentDirs.length > 0) {
        const below = await stat(upper(parentDirs[0]!));
        await lchown(upper(dir), below.uid, below.gid);
      }
    },
    mounts: (kind, dir, parentDirs) => overlayMounts(kind, dir, parentDirs, indexOff),
    usage: (dir, signal) => diskUsage(upper(dir), signal),
  };
}
