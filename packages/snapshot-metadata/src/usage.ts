/**
 * Disk usage of a directory tree the way containerd reports it: allocated
 * blocks in bytes (st_blocks * 512) and the number of distinct inodes, the
 * root included, each hardlinked inode counted once.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Usage } from './records.js';

/** How many lstat calls are in flight at once. */
const PARALLEL_STATS = 32;
const BLOCK_UNIT = 512n;

export async function diskUsage(root: string, signal?: AbortSignal): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0n;

  const count = async (path: string): Promise<boolean> => {
    const st = await lstat(path, { bigint: true });
    const inode = `${st.dev}:${st.ino}`;
    if (!seen.has(inode)) {
      seen.add(inode);
      size += st.blocks * BLOCK_UNIT;
    }
    return st.isDirectory();
  };

  if (!(await count(root))) return { size, inodes: BigInt(seen.size) };
  const pending = [root];
  while (pending.length > 0) {
    signal?.throwIfAborted();
    const dir = pending.pop()!;
    const names = await readdir(dir);
    for (let i = 0; i < names.length; i += PARALLEL_STATS) {
      const paths = names.slice(i, i + PARALLEL_STATS).map((name) => join(dir, name));
      const isDir = await Promise.all(paths.map(count));
      paths.forEach((path, j) => isDir[j] && pending.push(path));
    }
  }
  return { size, inodes: BigInt(seen.size) };
}
