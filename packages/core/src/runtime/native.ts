/**
 * mkfifo(3) and umount2(2) through koffi: both sit on the path of every task create
 * and delete, where spawning mkfifo(1) or umount(8) costs a fork of this whole process.
 * Loaded on first use.
 */
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');
type Fn = (...args: unknown[]) => number;

let libc: { koffi: Koffi; mkfifo: Fn; umount2: Fn } | undefined;

function load(): NonNullable<typeof libc> {
  if (libc) return libc;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  libc = {
    koffi,
    mkfifo: lib.func('int mkfifo(const char *, unsigned int)') as Fn,
    umount2: lib.func('int umount2(const char *, int)') as Fn,
  };
  return libc;
}

const ERRNO_CODES: Record<number, string> = { 2: 'ENOENT', 13: 'EACCES', 16: 'EBUSY', 17: 'EEXIST', 22: 'EINVAL' };

function failure(call: string, path: string, errno: number): NodeJS.ErrnoException {
  const code = ERRNO_CODES[errno] ?? `errno ${errno}`;
  const err: NodeJS.ErrnoException = new Error(`${call} ${path}: ${code}`);
  err.code = code;
  err.errno = errno;
  return err;
}

export function mkfifo(path: string, mode: number): void {
  const { mkfifo: call, koffi } = load();
  if (call(path, mode) !== 0) throw failure('mkfifo', path, koffi.errno());
}

const MNT_DETACH = 2;
const EINVAL = 22;
const ENOENT = 2;

/** Unmounts everything stacked on target, lazily if busy; a no-op when nothing is mounted. */
export function unmountAll(target: string): void {
  const { umount2, koffi } = load();
  for (let i = 0; i < 64; i++) {
    if (umount2(target, 0) === 0) continue;
    const errno = koffi.errno();
    if (errno === EINVAL || errno === ENOENT) return;
    if (umount2(target, MNT_DETACH) !== 0) {
      const again = koffi.errno();
      if (again === EINVAL || again === ENOENT) return;
      throw failure('umount', target, again);
    }
  }
}
