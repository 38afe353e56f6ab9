import { execFile, execFileSync } from 'node:child_process';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readdir, readlink, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Snapshotter } from '@boxd/snapshot-metadata';
import { copyTree, nativeBackend } from '../src/index.js';

const run = promisify(execFile);

let dir = '';
let sn: Snapshotter;
let root = '';
const snapDir = (key: string) => join(root, 'snapshots', String(sn.stat(key).id));

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-nau-');
  root = join(dir, 'root');
  sn = await Snapshotter.open({ root, backend: nativeBackend() });
});
afterAll(async () => {
  await sn.close();
  await rm(dir, { recursive: true, force: true });
});

describe('mount shapes', () => {
  it('active snapshots bind their own copy read-write, views bind the parent read-only', async () => {
    expect(await sn.prepare('base-a', '')).toEqual([{ type: 'bind', source: snapDir('base-a'), target: '', options: ['rw', 'rbind'] }]);
    await sn.commit('base', 'base-a');
    expect(await sn.prepare('child', 'base')).toEqual([{ type: 'bind', source: snapDir('child'), target: '', options: ['rw', 'rbind'] }]);
    expect(await sn.view('view', 'base')).toEqual([{ type: 'bind', source: snapDir('base'), target: '', options: ['ro', 'rbind'] }]);
    expect(await sn.view('empty-view', '')).toEqual([{ type: 'bind', source: snapDir('empty-view'), target: '', options: ['ro', 'rbind'] }]);
    // A snapshot directory is a container's `/`.
    expect((await stat(snapDir('child'))).mode & 0o777).toBe(0o755);
  });
});

const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import os; os.setxattr']);
    return true;
  } catch {
    return false;
  }
})();

/** The xattrs of each path (name -> hex value), read in one python run. */
function xattrs(paths: string[]): Record<string, string>[] {
  const script = 'import os,sys,json; print(json.dumps([{k: os.getxattr(p,k,follow_symlinks=False).hex() for k in os.listxattr(p,follow_symlinks=False)} for p in sys.argv[1:]]))';
  return JSON.parse(execFileSync('python3', ['-c', script, ...paths]).toString()) as Record<string, string>[];
}

describe('a child snapshot is a faithful copy of its parent', () => {
  let parent = '';
  let child = '';

  beforeAll(async () => {
    await sn.prepare('full-a', '');
    parent = snapDir('full-a');
    await mkdir(join(parent, 'dir', 'sub'), { recursive: true });
    await writeFile(join(parent, 'dir', 'file'), 'content');
    await link(join(parent, 'dir', 'file'), join(parent, 'hardlink'));
    await symlink('dir/file', join(parent, 'symlink'));
    await writeFile(join(parent, 'setuid'), '#!/bin/sh\n');
    await chown(join(parent, 'setuid'), 1000, 2000);
    await chmod(join(parent, 'setuid'), 0o4755);
    await run('mknod', [join(parent, 'null'), 'c', '1', '3']);
    await run('mkfifo', [join(parent, 'fifo')]);
    await writeFile(join(parent, 'sparse'), '');
    await truncate(join(parent, 'sparse'), 1 << 30);
    await utimes(join(parent, 'dir', 'sub'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    if (hasPython) {
      execFileSync('python3', ['-c', `import os; os.setxattr('${parent}/dir/file', 'user.test', b'v'); os.setxattr('${parent}/dir/sub', 'trusted.overlay.opaque', b'y'); os.setxattr('${parent}/setuid', 'security.capability', bytes.fromhex('0100000200200000000000000000000000000000'))`]);
    }
    await sn.commit('full', 'full-a');
    await sn.prepare('full-child', 'full');
    parent = snapDir('full');
    child = snapDir('full-child');
  });

  it('holds the same entries', async () => {
    expect((await readdir(child)).sort()).toEqual((await readdir(parent)).sort());
  });

  it('keeps modes, owners, devices, fifos and timestamps', async () => {
    for (const path of ['dir', 'dir/sub', 'dir/file', 'setuid', 'null', 'fifo', 'symlink']) {
      const [a, b] = await Promise.all([lstat(join(parent, path)), lstat(join(child, path))]);
      expect({ path, mode: b.mode, uid: b.uid, gid: b.gid, rdev: b.rdev, mtime: b.mtimeMs }).toEqual({
        path,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        mtime: a.mtimeMs,
      });
    }
    expect(await readlink(join(child, 'symlink'))).toBe('dir/file');
  });

  it('keeps hardlinks as hardlinks within the copy, separate from the parent', async () => {
    const [file, hard, orig] = await Promise.all([lstat(join(child, 'dir/file')), lstat(join(child, 'hardlink')), lstat(join(parent, 'dir/file'))]);
    expect(hard.ino).toBe(file.ino);
    expect(file.nlink).toBe(2);
    expect(file.ino).not.toBe(orig.ino);
  });

  it('keeps sparse files sparse', async () => {
    const st = await lstat(join(child, 'sparse'));
    expect(st.size).toBe(1 << 30);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
  });

  it.runIf(hasPython)('keeps xattrs, trusted.* and security.capability included', () => {
    const paths = ['dir/file', 'dir/sub', 'setuid'];
    const copied = xattrs(paths.map((p) => join(child, p)));
    expect(copied).toEqual(xattrs(paths.map((p) => join(parent, p))));
    expect(copied.map((x) => Object.keys(x).sort())).toEqual([['user.test'], ['trusted.overlay.opaque'], ['security.capability']]);
  });

  it('copyTree reports a failure as an error', async () => {
    await expect(copyTree(join(dir, 'missing'), join(dir, 'target'))).rejects.toThrow(/copying .*missing/);
  });
});
