/**
 * mount(8)'s option words turned into mount(2) arguments: flags, propagation and the
 * filesystem's own data string. Only what the kernel understands directly is handled;
 * `plan()` returns undefined for anything that needs mount(8) (helpers, loop devices).
 */
const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;
const MS_SYNCHRONOUS = 0x10;
const MS_MANDLOCK = 0x40;
const MS_DIRSYNC = 0x80;
const MS_NOATIME = 0x400;
const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_REMOUNT = 0x20;
export const MS_REC = 0x4000;
const MS_UNBINDABLE = 0x20000;
const MS_PRIVATE = 0x40000;
const MS_SLAVE = 0x80000;
const MS_SHARED = 0x100000;
const MS_RELATIME = 0x200000;
const MS_STRICTATIME = 0x1000000;

/** word → [clears?, flag] */
const FLAGS: Record<string, [boolean, number]> = {
  defaults: [false, 0],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  nosuid: [false, MS_NOSUID],
  suid: [true, MS_NOSUID],
  nodev: [false, MS_NODEV],
  dev: [true, MS_NODEV],
  noexec: [false, MS_NOEXEC],
  exec: [true, MS_NOEXEC],
  sync: [false, MS_SYNCHRONOUS],
  async: [true, MS_SYNCHRONOUS],
  mand: [false, MS_MANDLOCK],
  nomand: [true, MS_MANDLOCK],
  dirsync: [false, MS_DIRSYNC],
  noatime: [false, MS_NOATIME],
  atime: [true, MS_NOATIME],
  nodiratime: [false, MS_NODIRATIME],
  diratime: [true, MS_NODIRATIME],
  relatime: [false, MS_RELATIME],
  norelatime: [true, MS_RELATIME],
  strictatime: [false, MS_STRICTATIME],
  nostrictatime: [true, MS_STRICTATIME],
  remount: [false, MS_REMOUNT],
  bind: [false, MS_BIND],
  rbind: [false, MS_BIND | MS_REC],
};

const PROPAGATION: Record<string, number> = {
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
};

/** Filesystems the kernel mounts without a userspace helper, and that containerd sends. */
const KERNEL_TYPES = new Set(['overlay', 'bind', 'tmpfs', 'proc', 'sysfs', 'devpts', 'mqueue']);

/** Words only mount(8) acts on. */
const NEEDS_MOUNT8 = new Set(['loop', 'user', 'users', 'owner', 'group', 'nofail', 'auto', 'noauto', '_netdev']);

export interface MountPlan {
  flags: number;
  propagation: number;
  data: string;
  bind: boolean;
}

export function plan(type: string, options: readonly string[]): MountPlan | undefined {
  if (type && !KERNEL_TYPES.has(type)) return undefined;
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const word of options) {
    if (NEEDS_MOUNT8.has(word) || word.startsWith('x-')) return undefined;
    const flag = FLAGS[word];
    if (flag) flags = flag[0] ? flags & ~flag[1] : flags | flag[1];
    else if (PROPAGATION[word] !== undefined) propagation |= PROPAGATION[word];
    else data.push(word);
  }
  const bind = type === 'bind' || (flags & MS_BIND) !== 0;
  // A bind mount has no filesystem data to pass; words left over mean something else.
  if (bind && data.length) return undefined;
  return { flags, propagation, data: data.join(','), bind };
}
