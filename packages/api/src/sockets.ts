/**
 * Unix socket files every boxd server listens on: stale ones from a dead
 * process are replaced, a live server's socket is never stolen, and the
 * file gets owner-only (or group) permissions.
 */
import { connect } from 'node:net';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AlreadyExistsError, UnavailableError } from './errors.js';

/** Whether a server accepts connections on the socket at `path`. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** Frees `path` for a new listener (abstract sockets, with a leading NUL, need nothing). */
export async function prepareSocketPath(path: string): Promise<void> {
  if (path.startsWith('\0')) return;
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new AlreadyExistsError(`${path} exists and is not a socket`);
  if (await socketAnswers(path)) throw new UnavailableError(`${path} is in use by a running server`);
  await unlink(path).catch(() => undefined);
}

export interface ListenOptions {
  /** Socket file mode; 0600, or 0660 when `gid` is given. */
  mode?: number;
  /** Group that may connect (with mode 0660). */
  gid?: number;
}

export async function applySocketMode(path: string, options: ListenOptions = {}): Promise<void> {
  if (path.startsWith('\0')) return;
  await chmod(path, options.mode ?? (options.gid === undefined ? 0o600 : 0o660));
  if (options.gid !== undefined) await chown(path, -1, options.gid);
}
