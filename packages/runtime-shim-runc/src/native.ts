/**
 * The few libc calls Node does not offer, through koffi (prebuilt FFI, no compiler needed):
 * child subreaping, waitpid on a single pid, real pipes, receiving a pty master over
 * SCM_RIGHTS, TIOCSWINSZ and umount2. Loaded on first use so `start` never pays for it.
 */
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');
type Fn = (...args: unknown[]) => number;

interface Libc {
  koffi: Koffi;
  prctl: Fn;
  waitpid: Fn;
  pipe2: Fn;
  recvmsg: Fn;
  ioctl: Fn;
  umount2: Fn;
  mount: Fn;
  strerror: (errno: number) => string;
  close: Fn;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  libc = {
    koffi,
    prctl: lib.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)') as Fn,
    waitpid: lib.func('int waitpid(int, _Out_ int *, int)') as Fn,
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)') as Fn,
    recvmsg: lib.func('long recvmsg(int, void *, int)') as Fn,
    ioctl: lib.func('int ioctl(int, unsigned long, void *)') as Fn,
    umount2: lib.func('int umount2(const char *, int)') as Fn,
    mount: lib.func('int mount(const char *, const char *, const char *, unsigned long, const char *)') as Fn,
    strerror: lib.func('const char *strerror(int)') as (errno: number) => string,
    close: lib.func('int close(int)') as Fn,
  };
  return libc;
}

export class NativeError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: errno ${errno}`);
    this.name = 'NativeError';
  }
}

function check(call: string, result: number): number {
  if (result < 0) throw new NativeError(call, load().koffi.errno());
  return result;
}

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const O_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const TIOCSWINSZ = 0x5414;
const EAGAIN = 11;
const ECHILD = 10;

/** Orphaned descendants (container processes once runc exits) are reparented to us. */
export function becomeChildSubreaper(): void {
  check('prctl(PR_SET_CHILD_SUBREAPER)', load().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
}

export type WaitResult = { pid: number; status: number } | 'running' | 'not-a-child';

/** waitpid(pid, WNOHANG): never blocks, never touches any other child. */
export function waitNoHang(pid: number): WaitResult {
  const { waitpid, koffi } = load();
  const status = [0];
  const r = waitpid(pid, status, WNOHANG);
  if (r > 0) return { pid: r, status: status[0]! };
  if (r === 0) return 'running';
  const errno = koffi.errno();
  if (errno === ECHILD) return 'not-a-child';
  throw new NativeError('waitpid', errno);
}

/** Exit status as containerd reports it: the exit code, or 128 + signal number. */
export function exitCodeOf(waitStatus: number): number {
  const signal = waitStatus & 0x7f;
  return signal === 0 ? (waitStatus >> 8) & 0xff : 128 + signal;
}

/** A kernel pipe (not a socketpair: containers may open /dev/stdout). */
export function pipe(): { read: number; write: number } {
  const fds = [0, 0];
  check('pipe2', load().pipe2(fds, O_CLOEXEC));
  const [read, write] = fds as [number, number];
  return { read, write };
}

export function closeFd(fd: number): void {
  load().close(fd);
}

export type ReceivedFd = { fd: number; name: string } | 'again' | 'closed';

const IOV_OFFSET = 64;
const CONTROL_OFFSET = 96;
const CONTROL_SIZE = 32;
const DATA_OFFSET = 128;
const DATA_SIZE = 384;

/**
 * One non-blocking recvmsg for a file descriptor sent with SCM_RIGHTS (runc sends the
 * pty master this way, with the pty's name as data). The message buffers live in native
 * memory so the pointers inside msghdr stay valid for the call.
 */
export function receiveFd(socketFd: number): ReceivedFd {
  const { koffi, recvmsg } = load();
  const mem = koffi.alloc('uint8_t', DATA_OFFSET + DATA_SIZE);
  try {
    const base = koffi.address(mem);
    const view = new DataView(koffi.view(mem, DATA_OFFSET + DATA_SIZE));
    for (let i = 0; i < DATA_OFFSET; i += 4) view.setUint32(i, 0);
    view.setBigUint64(16, base + BigInt(IOV_OFFSET), true); // msg_iov
    view.setBigUint64(24, 1n, true); // msg_iovlen
    view.setBigUint64(32, base + BigInt(CONTROL_OFFSET), true); // msg_control
    view.setBigUint64(40, BigInt(CONTROL_SIZE), true); // msg_controllen
    view.setBigUint64(IOV_OFFSET, base + BigInt(DATA_OFFSET), true); // iov_base
    view.setBigUint64(IOV_OFFSET + 8, BigInt(DATA_SIZE), true); // iov_len
    const n = recvmsg(socketFd, mem, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      const errno = koffi.errno();
      if (errno === EAGAIN) return 'again';
      throw new NativeError('recvmsg', errno);
    }
    const controlLen = Number(view.getBigUint64(40, true));
    if (controlLen < 20) return n === 0 ? 'closed' : 'again';
    const level = view.getInt32(CONTROL_OFFSET + 8, true);
    const type = view.getInt32(CONTROL_OFFSET + 12, true);
    if (level !== SOL_SOCKET || type !== SCM_RIGHTS) throw new Error('console socket: message carries no file descriptor');
    const fd = view.getInt32(CONTROL_OFFSET + 16, true);
    const name = Buffer.from(koffi.view(mem, DATA_OFFSET + n).slice(DATA_OFFSET)).toString('utf8');
    return { fd, name };
  } finally {
    koffi.free(mem);
  }
}

/** TIOCSWINSZ on a pty master. */
export function setWindowSize(fd: number, rows: number, cols: number): void {
  const size = Buffer.alloc(8);
  size.writeUInt16LE(rows, 0);
  size.writeUInt16LE(cols, 2);
  check('ioctl(TIOCSWINSZ)', load().ioctl(fd, TIOCSWINSZ, size));
}

export const MNT_DETACH = 2;
const EINVAL = 22;
const ENOENT = 2;

/** mount(2); the error names errno the way mount(8) would describe it. */
export function mountSyscall(source: string, target: string, type: string | null, flags: number, data: string | null): void {
  const { mount, koffi, strerror } = load();
  if (mount(source, target, type, flags, data) === 0) return;
  const errno = koffi.errno();
  throw new NativeError(`mount ${source} on ${target}: ${strerror(errno)}`, errno);
}

/** umount2; false once nothing (more) is mounted there. */
export function unmountOnce(target: string, flags = 0): boolean {
  const { umount2, koffi } = load();
  if (umount2(target, flags) === 0) return true;
  const errno = koffi.errno();
  if (errno === EINVAL || errno === ENOENT) return false;
  throw new NativeError(`umount ${target}`, errno);
}
