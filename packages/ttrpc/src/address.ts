/** Unix socket addresses: `unix://` prefixes, stale socket files, permissions. */
import { connect } from 'node:net';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AlreadyExistsError, UnavailableError } from '@boxd/api';

/** `unix:///run/x.sock` and `unix:/run/x.sock` -> `/run/x.sock`; a leading NUL names an abstract socket. */
export function socketPath(address: string): string {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address.startsWith('unix:')) return address.slice('unix:'.length);
  return address;
}

export function isAbstract(path: string): boolean {
  return path.startsWith('\0');
}

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
 * Frees `path` for a new listener: a socket file nobody answers on is left
 * over from a dead process and removed; a live server's socket is not stolen.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  if (isAbstract(path)) return;
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new AlreadyExistsError(`ttrpc: ${path} exists and is not a socket`);
  if (await answers(path)) throw new UnavailableError(`ttrpc: ${path} is in use by a running server`);
  await unlink(path).catch(() => undefined);
}

export interface ListenOptions {
  /** Socket file mode; 0600, or 0660 when `gid` is given. */
  mode?: number;
  /** Group that may connect (with mode 0660). */
  gid?: number;
}

export async function applySocketMode(path: string, options: ListenOptions): Promise<void> {
  if (isAbstract(path)) return;
  await chmod(path, options.mode ?? (options.gid === undefined ? 0o600 : 0o660));
  if (options.gid !== undefined) await chown(path, -1, options.gid);
}
