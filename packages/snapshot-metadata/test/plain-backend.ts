/**
 * The simplest real backend: a snapshot is a directory of its own files,
 * mounted by bind. Enough to exercise the shared logic without overlayfs.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Kind, diskUsage, type SnapshotBackend } from '../src/index.js';

export function plainBackend(): SnapshotBackend {
  return {
    populate: async (dir) => {
      await mkdir(join(dir, 'fs'));
    },
    mounts: (kind, dir, parentDirs) => [
      {
        type: 'bind',
        source: join(kind === Kind.VIEW && parentDirs.length > 0 ? parentDirs[0]! : dir, 'fs'),
        target: '',
        options: [kind === Kind.VIEW ? 'ro' : 'rw', 'rbind'],
      },
    ],
    usage: (dir) => diskUsage(join(dir, 'fs')),
  };
}
