/**
 * Mounting a task's rootfs from the Mounts in CreateTaskRequest, and unmounting it.
 * The usual mounts (overlay, bind) go straight to mount(2): starting mount(8) costs
 * milliseconds on every container start. Anything else goes through mount(8), which
 * understands every option string containerd sends.
 */
import { dirname, relative, sep } from 'node:path';
import { MS_BIND, MS_REC, MS_REMOUNT, plan } from './mount-options.js';
import { MNT_DETACH, mountSyscall, NativeError, unmountOnce } from './native.js';
import { spawnHelper } from './spawn.js';

export interface MountSpec {
  type: string;
  source: string;
  options: string[];
}

/** The kernel reads mount data from one page. */
export const PAGE_SIZE = 4096;

export class MountError extends Error {
  override name = 'MountError';
}

function commonDir(paths: readonly string[]): string {
  let common = dirname(paths[0]!);
  for (const path of paths.slice(1)) {
    while (common !== sep && !path.startsWith(common + sep)) common = dirname(common);
  }
  return common;
}

/**
 * For overlay mounts whose options would not fit in a page, the lowerdirs are made
 * relative to their common parent and mount(8) is run from there (mount(8) cannot chdir
 * for us). Returns the options to use and the directory to run mount in.
 */
export function compactOverlayOptions(options: readonly string[]): { options: string[]; cwd?: string } {
  if (options.join(',').length < PAGE_SIZE) return { options: [...options] };
  const index = options.findIndex((o) => o.startsWith('lowerdir='));
  if (index < 0) return { options: [...options] };
  const lowers = options[index]!.slice('lowerdir='.length).split(':');
  const cwd = commonDir(lowers);
  if (cwd === sep) return { options: [...options] };
  const compacted = [...options];
  compacted[index] = `lowerdir=${lowers.map((l) => relative(cwd, l)).join(':')}`;
  return { options: compacted, cwd };
}

function runMount(args: string[], cwd: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnHelper('mount', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new MountError(`mount ${args.join(' ')}: ${stderr.trim() || `exit status ${code}`}`));
    });
  });
}

/** mount(2) as mount(8) would call it; false when only mount(8) can do it. */
function mountDirect(mount: MountSpec, options: readonly string[], target: string): boolean {
  const p = plan(mount.type, options);
  if (!p) return false;
  let mounted = false;
  try {
    if (p.bind) {
      mountSyscall(mount.source, target, null, p.flags & (MS_BIND | MS_REC), null);
      mounted = true;
      // The kernel ignores the other flags on the bind itself: they take a remount.
      const rest = p.flags & ~(MS_BIND | MS_REC);
      if (rest) mountSyscall('', target, null, rest | MS_BIND | MS_REMOUNT, null);
    } else {
      mountSyscall(mount.source, target, mount.type, p.flags, p.data || null);
      mounted = true;
    }
    if (p.propagation) mountSyscall('', target, null, p.propagation, null);
  } catch (err) {
    // Half done (mounted, but not as asked) is undone: the caller only undoes whole mounts.
    if (mounted) unmountOnce(target, MNT_DETACH);
    if (err instanceof NativeError) throw new MountError(err.message);
    throw err;
  }
  return true;
}

export async function mountOne(mount: MountSpec, target: string): Promise<void> {
  const { options, cwd } = mount.type === 'overlay' ? compactOverlayOptions(mount.options) : { options: mount.options, cwd: undefined };
  // Compacted lowerdirs are relative to cwd, which mount(2) from this process cannot use.
  if (!cwd && mountDirect(mount, options, target)) return;
  const args: string[] = [];
  // containerd says type "bind" with a "bind"/"rbind" option; mount(8) wants the option only.
  if (mount.type && mount.type !== 'bind') args.push('-t', mount.type);
  if (options.length) args.push('-o', options.join(','));
  args.push(mount.source, target);
  await runMount(args, cwd);
}

/** Mounts each in order onto target; on failure, unmounts what it had mounted. */
export async function mountAll(mounts: readonly MountSpec[], target: string): Promise<void> {
  let done = 0;
  try {
    for (const mount of mounts) {
      await mountOne(mount, target);
      done++;
    }
  } catch (err) {
    for (; done > 0; done--) unmountOnce(target, MNT_DETACH);
    throw err;
  }
}

/** Unmounts everything stacked on target (lazily if busy). */
export function unmountAll(target: string): void {
  for (let i = 0; i < 64; i++) {
    try {
      if (!unmountOnce(target)) return;
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      if (!unmountOnce(target, MNT_DETACH)) return;
    }
  }
}
