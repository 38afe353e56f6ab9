import { open, rm, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Digester } from './digest.js';

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

/** fsync a directory so a link or rename inside it survives a power cut. */
export async function syncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Size and mtime (ns) of a file, or undefined when it does not exist. */
export async function statFile(path: string): Promise<{ size: bigint; mtimeNs: bigint } | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return { size: s.size, mtimeNs: s.mtimeNs };
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Feeds a whole file through a digester (streamed), returning the byte count. */
export async function hashFile(path: string, digester: Digester): Promise<bigint> {
  let size = 0n;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    digester.update(chunk as Buffer);
    size += BigInt((chunk as Buffer).length);
  }
  return size;
}

export function removeTree(path: string): Promise<void> {
  return rm(path, { recursive: true, force: true });
}
