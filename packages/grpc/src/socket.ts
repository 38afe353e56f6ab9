import { connect } from 'node:net';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UnavailableError, AlreadyExistsError } from '@boxd/api';

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/**
 * Make `path` free for a new listener: remove a socket left by a dead process,
 * refuse to steal one a live server still answers on.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new AlreadyExistsError(`${path} exists and is not a socket`);
  if (await answers(path)) throw new UnavailableError(`${path} is in use by a running server`);
  await unlink(path).catch(() => undefined);
}
