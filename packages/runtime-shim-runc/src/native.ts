/**
 * The few libc calls Node does not offer (bound in libc.ts): child subreaping, waitpid,
 * posix_spawn, real pipes, receiving a pty master over SCM_RIGHTS, TIOCSWINSZ, mount and
 * umount2.
 */
import { libc as load } from './libc.js';

export class NativeError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: errno ${errno}`);
    this.name = 'NativeError';
  }
}

/** A libc call's result; a negative one throws with the call's errno. */
export function check(call: string, result: number): number {
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

/** waitpid(pid, WNOHANG): never blocks; -1 reaps any one exited child, another pid no other child. */
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

/** What a spawned process gets as one of its fds: a copy of ours, or /dev/null. */
export type ChildFd = { target: number; from: number } | { target: number; devNull: true };

// glibc's x86_64 and aarch64 sizes are 80, 336 and 128 bytes; the buffers leave room.
const FILE_ACTIONS_SIZE = 256;
const SPAWN_ATTR_SIZE = 512;
const SIGSET_SIZE = 256;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const O_RDWR = 2;
/** Fds from here on are closed in the child, close-on-exec or not (one we inherited may not be). */
const FIRST_UNLISTED_FD = 3;

/**
 * posix_spawnp: the child shares our memory until it execs (vfork), where a fork
 * copies the page tables of all of Node's heap first (~0.8 ms a spawn here, against
 * ~0.07 ms). Every signal starts at its default and unblocked, as libuv's children
 * do, and only `fds` (as 0, 1 and 2) reach the child. A failed exec throws (its
 * errno) instead of making a child.
 */
export function spawnVforked(file: string, args: readonly string[], env: readonly string[], fds: readonly ChildFd[]): number {
  const c = load();
  const actions = Buffer.alloc(FILE_ACTIONS_SIZE);
  const attr = Buffer.alloc(SPAWN_ATTR_SIZE);
  const all = Buffer.alloc(SIGSET_SIZE);
  const none = Buffer.alloc(SIGSET_SIZE);
  spawnCheck('posix_spawn_file_actions_init', c.fileActionsInit(actions));
  try {
    spawnCheck('posix_spawnattr_init', c.spawnAttrInit(attr));
    try {
      for (const fd of fds) {
        if ('from' in fd) spawnCheck('posix_spawn_file_actions_adddup2', c.fileActionsAddDup2(actions, fd.from, fd.target));
        else spawnCheck('posix_spawn_file_actions_addopen', c.fileActionsAddOpen(actions, fd.target, '/dev/null', O_RDWR, 0));
      }
      spawnCheck('posix_spawn_file_actions_addclosefrom_np', c.fileActionsAddCloseFrom(actions, FIRST_UNLISTED_FD));
      // Signals 1 to 64 by hand: sigfillset leaves out glibc's own two (32 and 33), which
      // the child would then start with ignored, across the exec.
      all.fill(0xff, 0, 8);
      spawnCheck('posix_spawnattr_setsigdefault', c.spawnAttrSetSigDefault(attr, all));
      spawnCheck('posix_spawnattr_setsigmask', c.spawnAttrSetSigMask(attr, none));
      spawnCheck('posix_spawnattr_setflags', c.spawnAttrSetFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK));
      const pid = [0];
      const failed = c.posixSpawnp(pid, file, actions, attr, [file, ...args, null], [...env, null]);
      if (failed !== 0) throw new NativeError(`spawn ${file}: ${c.strerror(failed)}`, failed);
      return pid[0]!;
    } finally {
      c.spawnAttrDestroy(attr);
    }
  } finally {
    c.fileActionsDestroy(actions);
  }
}

/** The posix_spawn family returns its errno instead of setting it. */
function spawnCheck(call: string, result: number): void {
  if (result !== 0) throw new NativeError(call, result);
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
