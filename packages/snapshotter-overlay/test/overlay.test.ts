import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Snapshotter } from '@boxd/snapshot-metadata';
import { withMounts } from '@boxd/snapshotter-testsuite';
import { overlayBackend } from '../src/index.js';

const run = promisify(execFile);

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-ovu-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('overlayfs mounts on this machine', async () => {
  const base = join(dir, 'probe');
  for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(base, d), { recursive: true });
  await writeFile(join(base, 'lower', 'from-lower'), 'l');
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base}/lower,upperdir=${base}/upper,workdir=${base}/work`, join(base, 'merged')]);
  try {
    expect(await readFile(join(base, 'merged', 'from-lower'), 'utf8')).toBe('l');
    await writeFile(join(base, 'merged', 'from-merged'), 'm');
  } finally {
    await run('umount', [join(base, 'merged')]);
  }
  expect(await readdir(join(base, 'upper'))).toEqual(['from-merged']);
});

describe('mount shapes', () => {
  let sn: Snapshotter;
  let root = '';
  const fs = (key: string) => join(root, 'snapshots', String(sn.stat(key).id), 'fs');
  const work = (key: string) => join(root, 'snapshots', String(sn.stat(key).id), 'work');

  beforeAll(async () => {
    root = join(dir, 'shapes');
    sn = await Snapshotter.open({ root, backend: overlayBackend({ indexOff: true }) });
    for (const [name, parent] of [['l1', ''], ['l2', 'l1'], ['l3', 'l2']]) {
      await sn.prepare(`${name}-a`, parent!);
      await sn.commit(name!, `${name}-a`);
    }
  });
  afterAll(async () => {
    await sn.close();
  });

  it('an active snapshot without parent is a read-write bind of its fs', async () => {
    const mounts = await sn.prepare('a0', '');
    expect(mounts).toEqual([{ type: 'bind', source: fs('a0'), target: '', options: ['rw', 'rbind'] }]);
    expect(fs('a0')).toMatch(/\/snapshots\/[0-9]+\/fs$/);
  });

  it('an active snapshot on parents is an overlay, lowerdirs nearest parent first', async () => {
    const mounts = await sn.prepare('a3', 'l3');
    expect(mounts).toEqual([
      {
        type: 'overlay',
        source: 'overlay',
        target: '',
        options: ['index=off', `workdir=${work('a3')}`, `upperdir=${fs('a3')}`, `lowerdir=${fs('l3')}:${fs('l2')}:${fs('l1')}`],
      },
    ]);
  });

  it('a view of one layer is a read-only bind of it; of several, an overlay of lowerdirs only', async () => {
    expect(await sn.view('v1', 'l1')).toEqual([{ type: 'bind', source: fs('l1'), target: '', options: ['ro', 'rbind'] }]);
    expect(await sn.view('v2', 'l2')).toEqual([
      { type: 'overlay', source: 'overlay', target: '', options: ['index=off', `lowerdir=${fs('l2')}:${fs('l1')}`] },
    ]);
    // A view gets no work directory: nothing is ever written through it.
    expect(await readdir(join(root, 'snapshots', String(sn.stat('v2').id)))).toEqual(['fs']);
  });

  it('the upper of a child takes the owner of the layer below', async () => {
    const mounts = await sn.prepare('owned-a', '');
    await withMounts(mounts, await mkdtemp(join(dir, 'm-')), async (mnt) => {
      await run('chown', ['4242:4343', mnt]);
    });
    await sn.commit('owned', 'owned-a');
    await sn.prepare('owned-child', 'owned');
    const st = await stat(fs('owned-child'));
    expect([st.uid, st.gid]).toEqual([4242, 4343]);
  });

  it('whiteouts written the way a differ applies layers (0/0 char devices) hide lower files', async () => {
    await sn.prepare('wh-a', 'l3');
    await writeFile(join(fs('l1'), 'doomed'), 'x');
    await run('mknod', [join(fs('wh-a'), 'doomed'), 'c', '0', '0']);
    await sn.commit('wh', 'wh-a');
    await withMounts(await sn.view('wh-view', 'wh'), await mkdtemp(join(dir, 'm-')), async (mnt) => {
      expect(await readdir(mnt)).not.toContain('doomed');
    });
    await withMounts(await sn.view('wh-below', 'l3'), await mkdtemp(join(dir, 'm-')), async (mnt) => {
      expect(await readdir(mnt)).toContain('doomed');
    });
  });

  it('Usage of an active overlay snapshot counts its upper only', async () => {
    await writeFile(join(fs('l1'), 'big-below'), Buffer.alloc(1 << 20, 1));
    await sn.prepare('us', 'l3');
    await writeFile(join(fs('us'), 'small'), 'x');
    const usage = await sn.usage('us');
    expect(usage.inodes).toBe(2n);
    expect(usage.size).toBeLessThan(1n << 20n);
  });
});
