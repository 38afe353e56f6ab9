/**
 * Mounting what a snapshotter returns, the way a real consumer does, with
 * mount(8) (needs root).
 *
 * The kernel takes at most one page of mount options. containerd's mount code
 * gets deep overlay stacks under that limit by running the mount with its
 * working directory at the lowerdirs' common parent and passing them relative
 * to it; `compactLowerdir` does the same, so snapshotters are held to paths
 * that containerd can shorten (`<root>/snapshots/<id>/fs` with short ids).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Page size less the margin containerd keeps before it compacts. */
export const COMPACT_THRESHOLD = 4096 - 512;

export interface MountSpec {
  type: string;
  source: string;
  options: readonly string[];
}

export interface CompactedOptions {
  /** Run the mount with this working directory; undefined when nothing was compacted. */
  cwd?: string;
  options: string[];
}

/**
 * Rewrites `lowerdir=` relative to the common parent directory of its entries
 * when the options would not fit a page.
 */
export function compactLowerdir(options: readonly string[]): CompactedOptions {
  const copy = [...options];
  if (copy.join(',').length < COMPACT_THRESHOLD) return { options: copy };
  const index = copy.findIndex((o) => o.startsWith('lowerdir='));
  if (index < 0) return { options: copy };
  const dirs = copy[index]!.slice('lowerdir='.length).split(':');
  if (dirs.length < 2) return { options: copy };
  // The common prefix of `.../snapshots/12/fs` and `.../snapshots/13/fs` ends
  // inside an id (or right after `snapshots/`); up to its last slash is the
  // snapshots directory.
  const prefix = commonPrefix(dirs);
  const slash = prefix.lastIndexOf('/');
  // Nothing in common but `/`, or relative paths already.
  if (slash <= 0) return { options: copy };
  const cwd = prefix.slice(0, slash + 1);
  copy.splice(index, 1);
  copy.push(`lowerdir=${dirs.map((d) => d.slice(cwd.length)).join(':')}`);
  return { cwd, options: copy };
}

function commonPrefix(strings: readonly string[]): string {
  let prefix = strings[0]!;
  for (const s of strings) {
    let i = 0;
    while (i < prefix.length && i < s.length && prefix[i] === s[i]) i++;
    prefix = prefix.slice(0, i);
  }
  return prefix;
}

function isBind(m: MountSpec): boolean {
  return m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');
}

/** Mounts each mount of the list onto `target`, in order. */
export async function mountAll(mounts: readonly MountSpec[], target: string): Promise<void> {
  if (mounts.length === 0) throw new Error('no mounts to mount');
  for (const m of mounts) {
    if (isBind(m)) {
      await run('mount', ['-o', m.options.join(','), m.source, target]);
      continue;
    }
    const { cwd, options } = m.type === 'overlay' ? compactLowerdir(m.options) : { cwd: undefined, options: [...m.options] };
    const args = ['-t', m.type];
    if (options.length > 0) args.push('-o', options.join(','));
    await run('mount', [...args, m.source, target], { cwd });
  }
}

/** Unmounts `target` (every mount stacked on it); a busy mount is detached lazily. */
export async function unmountAll(target: string): Promise<void> {
  for (;;) {
    try {
      await run('umount', [target]);
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '');
      if (/not mounted|no mount point/i.test(stderr)) return;
      if (/busy/i.test(stderr)) {
        await run('umount', ['-l', target]);
        continue;
      }
      throw err;
    }
  }
}

/** Mounts, runs `fn` on the mounted tree, and always unmounts. */
export async function withMounts<T>(mounts: readonly MountSpec[], target: string, fn: (root: string) => Promise<T>): Promise<T> {
  await mountAll(mounts, target);
  try {
    return await fn(target);
  } finally {
    await unmountAll(target);
  }
}
