/**
 * The libc functions the shim calls through koffi (prebuilt FFI, no compiler needed),
 * bound on first use so `start` never pays for loading them.
 */
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');
type Fn = (...args: unknown[]) => number;
type AsyncFn = Fn & { async: (...args: unknown[]) => void };

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
  posixSpawnp: Fn;
  fileActionsInit: Fn;
  fileActionsAddDup2: Fn;
  fileActionsAddOpen: Fn;
  fileActionsAddCloseFrom: Fn;
  fileActionsDestroy: Fn;
  spawnAttrInit: Fn;
  spawnAttrSetFlags: Fn;
  spawnAttrSetSigDefault: Fn;
  spawnAttrSetSigMask: Fn;
  spawnAttrDestroy: Fn;
  eventfd: Fn;
  epollCreate: Fn;
  epollCtl: Fn;
  epollWait: AsyncFn;
  read: Fn;
  write: Fn;
}

let loaded: Libc | undefined;

export function libc(): Libc {
  if (loaded) return loaded;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  loaded = {
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
    posixSpawnp: lib.func('int posix_spawnp(_Out_ int *pid, const char *file, void *actions, void *attr, const char **argv, const char **envp)') as Fn,
    fileActionsInit: lib.func('int posix_spawn_file_actions_init(void *)') as Fn,
    fileActionsAddDup2: lib.func('int posix_spawn_file_actions_adddup2(void *, int, int)') as Fn,
    fileActionsAddOpen: lib.func('int posix_spawn_file_actions_addopen(void *, int, const char *, int, unsigned int)') as Fn,
    fileActionsAddCloseFrom: lib.func('int posix_spawn_file_actions_addclosefrom_np(void *, int)') as Fn,
    fileActionsDestroy: lib.func('int posix_spawn_file_actions_destroy(void *)') as Fn,
    spawnAttrInit: lib.func('int posix_spawnattr_init(void *)') as Fn,
    spawnAttrSetFlags: lib.func('int posix_spawnattr_setflags(void *, short)') as Fn,
    spawnAttrSetSigDefault: lib.func('int posix_spawnattr_setsigdefault(void *, void *)') as Fn,
    spawnAttrSetSigMask: lib.func('int posix_spawnattr_setsigmask(void *, void *)') as Fn,
    spawnAttrDestroy: lib.func('int posix_spawnattr_destroy(void *)') as Fn,
    eventfd: lib.func('int eventfd(unsigned int, int)') as Fn,
    epollCreate: lib.func('int epoll_create1(int)') as Fn,
    epollCtl: lib.func('int epoll_ctl(int, int, int, void *)') as Fn,
    epollWait: lib.func('int epoll_wait(int, void *, int, int)') as AsyncFn,
    read: lib.func('long read(int, void *, unsigned long)') as Fn,
    write: lib.func('long write(int, void *, unsigned long)') as Fn,
  };
  return loaded;
}
