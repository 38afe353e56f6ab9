/**
 * Copying a snapshot tree with coreutils' `cp -a`: it keeps everything a
 * layer can hold (ownership, modes, timestamps, symlinks, hardlinks within
 * the tree, device nodes, fifos, sparse files, and xattrs including
 * `trusted.*` and `security.capability`), reflinks where the filesystem can,
 * and runs in C with no per-file round trips into JavaScript. No npm library
 * keeps hardlinks, devices and xattrs together.
 */
import { execFile } from 'node:child_process';
import { InternalError } from '@boxd/api';

export const CP = 'cp';

/** Copies the contents and attributes of directory `from` onto directory `to`. */
export function copyTree(from: string, to: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    // -T: `to` is the copy of `from` itself, not a directory to copy into.
    execFile(CP, ['-a', '--reflink=auto', '-T', '--', from, to], { signal, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      reject(new InternalError(`copying ${from} to ${to} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
    });
  });
}
