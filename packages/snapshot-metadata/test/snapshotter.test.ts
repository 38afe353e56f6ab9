import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isCode, Code } from '@boxd/api';
import { Kind, Snapshotter } from '../src/index.js';
import { plainBackend } from './plain-backend.js';

let root = '';
let sn: Snapshotter;

beforeEach(async () => {
  root = await mkdtemp('/tmp/bx-sm-');
  sn = await Snapshotter.open({ root, backend: plainBackend() });
});

afterEach(async () => {
  await sn.close();
  await rm(root, { recursive: true, force: true });
});

async function layer(name: string, parent = ''): Promise<void> {
  await sn.prepare(`${name}-a`, parent);
  await sn.commit(name, `${name}-a`);
}

describe('Snapshotter', () => {
  it('names directories by id and hands the parent chain to the backend nearest first', async () => {
    await layer('l1');
    await layer('l2', 'l1');
    await layer('l3', 'l2');
    const mounts = await sn.view('v', 'l3');
    const ids = ['l1', 'l2', 'l3'].map((k) => sn.stat(k).id);
    expect(new Set(ids).size).toBe(3);
    expect(mounts[0]!.source).toBe(join(root, 'snapshots', String(ids[2]), 'fs'));
    expect(sn.store.chain('v').parentIds).toEqual([...ids].reverse());
    expect((await readdir(join(root, 'snapshots'))).sort()).toEqual([...ids, sn.stat('v').id].map(String).sort());
  });

  it('keeps metadata across a reopen, usage exact as bigint', async () => {
    await sn.prepare('a');
    await writeFile(join(root, 'snapshots', String(sn.stat('a').id), 'fs', 'f'), Buffer.alloc(10_000, 1));
    const committed = await sn.commit('c', 'a', { l: 'v' });
    await sn.close();
    sn = await Snapshotter.open({ root, backend: plainBackend() });
    const info = sn.stat('c');
    expect(info).toMatchObject({ key: 'c', kind: Kind.COMMITTED, id: committed.id, labels: { l: 'v' } });
    expect(typeof info.usage!.size).toBe('bigint');
    expect(info.usage).toEqual(committed.usage);
    expect(await sn.usage('c')).toEqual({ size: info.usage!.size, inodes: 2n });
  });

  it('skips ids whose directory is occupied, e.g. by a crash between rename and commit', async () => {
    await mkdir(join(root, 'snapshots', '1'));
    await sn.prepare('a');
    expect(sn.stat('a').id).toBe(2);
  });

  it('Cleanup removes directories no snapshot owns and keeps the others', async () => {
    await layer('kept');
    await mkdir(join(root, 'snapshots', '777', 'fs'), { recursive: true });
    await mkdir(join(root, 'snapshots', 'new-leftover'));
    const removed = await sn.cleanup();
    expect(removed.sort()).toEqual([join(root, 'snapshots', '777'), join(root, 'snapshots', 'new-leftover')]);
    expect(await readdir(join(root, 'snapshots'))).toEqual([String(sn.stat('kept').id)]);
  });

  it('Cleanup leaves a Prepare in progress alone', async () => {
    const building = sn.dirs.startBuilding();
    expect(await sn.cleanup()).toEqual([]);
    await sn.dirs.finish(building);
    expect(await readdir(join(root, 'snapshots'))).toEqual([]);
  });

  it('a failed Prepare leaves no directory and no record', async () => {
    await layer('base');
    await sn.prepare('child', 'base');
    await expect(sn.prepare('x', 'child')).rejects.toSatisfy((e) => isCode(e, Code.INVALID_ARGUMENT));
    await expect(sn.prepare('child', 'base')).rejects.toSatisfy((e) => isCode(e, Code.ALREADY_EXISTS));
    expect([...sn.walk()].map((i) => i.key).sort()).toEqual(['base', 'child']);
    expect(await readdir(join(root, 'snapshots'))).toHaveLength(2);
  });

  it('rejects empty and oversized keys with INVALID_ARGUMENT', async () => {
    await expect(sn.prepare('')).rejects.toSatisfy((e) => isCode(e, Code.INVALID_ARGUMENT));
    await expect(sn.prepare('k'.repeat(2000))).rejects.toSatisfy((e) => isCode(e, Code.INVALID_ARGUMENT));
    await sn.prepare('a');
    await expect(sn.commit('', 'a')).rejects.toSatisfy((e) => isCode(e, Code.INVALID_ARGUMENT));
  });

  it('Remove deletes the directory with the record', async () => {
    await sn.prepare('a');
    const dir = join(root, 'snapshots', String(sn.stat('a').id));
    await writeFile(join(dir, 'fs', 'f'), 'x');
    await sn.remove('a');
    expect(await readdir(join(root, 'snapshots'))).toEqual([]);
  });
});
