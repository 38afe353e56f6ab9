import { mkdtemp, rm } from 'node:fs/promises';
import { unmountBelow } from './mounts.js';

const created = new Set<string>();

/**
 * Creates a fresh directory directly under /tmp (short, so unix socket paths inside it
 * stay well below the 108-byte limit).
 */
export async function tempDir(prefix = 'bx-'): Promise<string> {
  const dir = await mkdtemp(`/tmp/${prefix}`);
  created.add(dir);
  return dir;
}

/** Unmounts anything left mounted below dir, then deletes it. */
export async function removeDir(dir: string): Promise<void> {
  await unmountBelow(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  created.delete(dir);
}

/** Removes every directory tempDir() created in this process (call from afterAll). */
export async function cleanupTempDirs(): Promise<void> {
  for (const dir of [...created]) await removeDir(dir);
}
