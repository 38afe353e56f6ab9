/**
 * Disk usage of a directory tree the way containerd reports it: allocated
 * blocks in bytes (st_blocks * 512) and the number of distinct inodes, the
 * root included, each hardlinked inode counted once.
 *
 * Walked with synchronous calls in slices: a layer has thousands of small
 * files, and an lstat through libuv's thread pool costs several times the
 * syscall itself. Between slices the event loop gets a turn, so other calls
 * to the snapshotter wait at most one slice.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Usage } from './records.js';

/** Syscalls per slice. */
const SLICE = 512;
const BLOCK_UNIT = 512n;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function diskUsage(root: string, signal?: AbortSignal): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0n;
  let calls = 0;

  const count = (path: string): boolean => {
    calls++;
    const st = lstatSync(path, { bigint: true });
    const inode = `${st.dev}:${st.ino}`;
    if (!seen.has(inode)) {
      seen.add(inode);
      size += st.blocks * BLOCK_UNIT;
    }
    return st.isDirectory();
  };

  if (!count(root)) return { size, inodes: BigInt(seen.size) };
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    calls++;
    for (const name of readdirSync(dir)) {
      if (calls >= SLICE) {
        calls = 0;
        await nextTurn();
        signal?.throwIfAborted();
      }
      const path = join(dir, name);
      if (count(path)) pending.push(path);
    }
  }
  return { size, inodes: BigInt(seen.size) };
}
