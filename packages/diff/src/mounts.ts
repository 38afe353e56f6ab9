/** Turning containerd Mount lists into directories to read from or write to. */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError, InvalidArgumentError, types } from '@boxd/api';

export type Mount = Pick<types.Mount, 'type' | 'source' | 'options'>;

export interface MountedDir {
  root: string;
  release(): Promise<void>;
}

export function isBind(mount: Mount): boolean {
  return mount.type === 'bind' || mount.type === 'rbind' || mount.options.includes('bind') || mount.options.includes('rbind');
}

export interface OverlayDirs {
  upperdir?: string;
  workdir?: string;
  /** Topmost first, as in the `lowerdir=` option. */
  lowerdirs: string[];
}

export function overlayDirs(mount: Mount): OverlayDirs {
  const dirs: OverlayDirs = { lowerdirs: [] };
  for (const option of mount.options) {
    if (option.startsWith('upperdir=')) dirs.upperdir = option.slice('upperdir='.length);
    else if (option.startsWith('workdir=')) dirs.workdir = option.slice('workdir='.length);
    else if (option.startsWith('lowerdir=')) dirs.lowerdirs = option.slice('lowerdir='.length).split(':').filter(Boolean);
  }
  return dirs;
}

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.once('error', (err) => reject(new InternalError(`${args.join(' ')}: ${err.message}`)));
    child.once('close', (code) => (code === 0 ? resolve() : reject(new InternalError(`${args.join(' ')}: ${stderr.trim() || `exit ${code}`}`))));
  });
}

function mountArgs(mount: Mount, target: string, readonly: boolean): string[] {
  const options = [...mount.options];
  if (isBind(mount) && !options.includes('bind') && !options.includes('rbind')) options.push('rbind');
  if (readonly) {
    const rw = options.indexOf('rw');
    if (rw >= 0) options.splice(rw, 1);
    if (!options.includes('ro')) options.push('ro');
  }
  const args = ['mount'];
  if (!isBind(mount) && mount.type) args.push('-t', mount.type);
  if (options.length > 0) args.push('-o', options.join(','));
  args.push(mount.source || 'none', target);
  return args;
}

export async function checkDirectory(path: string, what: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory()) throw new InvalidArgumentError(`${what} "${path}" is not a directory`);
}

/** Mounts every mount in order onto one fresh temporary directory. */
export async function tempMount(mounts: Mount[], tmpDir: string, readonly: boolean): Promise<MountedDir> {
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const root = await mkdtemp(join(tmpDir, 'm-'));
  let mounted = 0;
  const release = async () => {
    for (; mounted > 0; mounted--) await run(['umount', root]);
    await rmdir(root);
  };
  try {
    for (const mount of mounts) {
      await run(mountArgs(mount, root, readonly));
      mounted++;
    }
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
  return { root, release };
}

/** A read-only view of the tree the mounts describe; a single bind mount is read in place. */
export async function readOnlyView(mounts: Mount[], tmpDir: string): Promise<MountedDir> {
  if (mounts.length === 0) throw new InvalidArgumentError('no mounts given');
  if (mounts.length === 1 && isBind(mounts[0]!)) {
    await checkDirectory(mounts[0]!.source, 'bind mount source');
    return { root: mounts[0]!.source, release: async () => undefined };
  }
  return tempMount(mounts, tmpDir, true);
}
