/**
 * Diff: the layer we write from two trees rebuilds the upper tree exactly,
 * whether our Apply or upstream containerd's applier unpacks it; and a layer
 * upstream's differ writes is applied exactly by ours.
 */
import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lstat, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { setAttributeSync } from '@napi-rs/xattr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { cleanupTempDirs, runOk, tempDir } from '@boxd/test-utils';
import { TarReader } from '../src/apply/tar-reader.js';
import { readAll, snapshotTree, NAMESPACE, type DiffPlugin, type Upstream, startTestEnv, type TestEnv } from './harness.js';

let dir: string;
let env: TestEnv;
let upstream: Upstream;
let plugin: DiffPlugin;
let lower: string;
let upper: string;
let n = 0;

const bind = (source: string) => [{ type: 'bind', source, options: ['rbind', 'ro'] }];
// security.capability value for cap_setuid (bit 7 → a byte above 0x7f) + cap_net_raw.
const CAPABILITY = Buffer.from('0100000280200000000000000000000000000000', 'hex');

async function copyOfLower(): Promise<string> {
  const target = join(dir, `copy${++n}`);
  await runOk('cp', ['-a', lower, target]);
  return target;
}

async function makeLower(): Promise<void> {
  await mkdir(join(lower, 'etc/conf.d'), { recursive: true });
  await writeFile(join(lower, 'etc/hostname'), 'lower\n');
  await writeFile(join(lower, 'etc/conf.d/a.conf'), 'a=1\n');
  await writeFile(join(lower, 'etc/keep'), 'unchanged\n');
  await mkdir(join(lower, 'var/cache/app'), { recursive: true });
  await writeFile(join(lower, 'var/cache/app/blob'), Buffer.alloc(50_000, 1));
  await mkdir(join(lower, 'opt/tobefile'), { recursive: true });
  await writeFile(join(lower, 'opt/tobefile/x'), 'x');
  await writeFile(join(lower, 'opt/tobedir'), 'file');
  await writeFile(join(lower, 'usr-bin-tool'), '#!/bin/sh\n');
  await symlink('hostname', join(lower, 'etc/alias'));
}

async function makeUpper(): Promise<void> {
  await runOk('cp', ['-a', lower, upper]);
  await writeFile(join(upper, 'etc/hostname'), 'upper\n');
  await rm(join(upper, 'etc/conf.d/a.conf'));
  await writeFile(join(upper, 'etc/conf.d/b.conf'), 'b=2\n');
  await rm(join(upper, 'var/cache'), { recursive: true });
  await rm(join(upper, 'opt/tobefile'), { recursive: true });
  await writeFile(join(upper, 'opt/tobefile'), 'now a file');
  await rm(join(upper, 'opt/tobedir'));
  await mkdir(join(upper, 'opt/tobedir/sub'), { recursive: true });
  await writeFile(join(upper, 'opt/tobedir/sub/f'), 'deep');
  await chmod(join(upper, 'usr-bin-tool'), 0o4755);
  await mkdir(join(upper, 'home/user'), { recursive: true });
  await writeFile(join(upper, 'home/user/.profile'), 'export A=1\n');
  await chown(join(upper, 'home/user'), 1000, 1000);
  await chown(join(upper, 'home/user/.profile'), 1000, 1001);
  await writeFile(join(upper, 'home/user/ping'), 'elf');
  setAttributeSync(join(upper, 'home/user/ping'), 'security.capability', CAPABILITY);
  setAttributeSync(join(upper, 'home/user/.profile'), 'user.note', 'hi');
  await writeFile(join(upper, 'hl-a'), 'shared');
  await link(join(upper, 'hl-a'), join(upper, 'hl-b'));
  await rm(join(upper, 'etc/alias'));
  await symlink('conf.d/b.conf', join(upper, 'etc/alias'));
  execFileSync('mkfifo', [join(upper, 'home/user/pipe')]);
  execFileSync('mknod', [join(upper, 'home/user/null'), 'c', '1', '3']);
  // Sockets are not part of a layer.
  await new Promise<void>((resolve) => {
    const server = createServer().listen(join(upper, 'home/user/sock'), () => server.close(() => resolve()));
  });
}

function withoutUserXattrs(tree: Awaited<ReturnType<typeof snapshotTree>>) {
  for (const entry of Object.values(tree)) for (const key of Object.keys(entry.xattrs)) if (key.startsWith('user.')) delete entry.xattrs[key];
  return tree;
}

function expectedUpper() {
  return snapshotTree(upper).then((tree) => {
    delete tree['home/user/sock'];
    return tree;
  });
}

beforeAll(async () => {
  dir = await tempDir('bx-dfd-');
  lower = join(dir, 'lower');
  upper = join(dir, 'upper');
  await makeLower();
  await makeUpper();
  env = await startTestEnv(dir, 'allow_devices = true');
  ({ upstream, plugin } = env);
});

afterAll(async () => {
  await env?.stop();
  await cleanupTempDirs();
});

async function ourDiff(mediaType = '', labels: Record<string, string> = {}) {
  const res = await plugin.client.Diff({ left: bind(lower), right: bind(upper), mediaType, ref: `test-diff-${++n}`, labels }, { namespace: NAMESPACE });
  return res.diff!;
}

async function tarNames(digest: string, gz: boolean): Promise<{ names: string[]; types: Record<string, string> }> {
  const bytes = await readAll(upstream, digest);
  const names: string[] = [];
  const types: Record<string, string> = {};
  const reader = new TarReader({
    entry(entry) {
      names.push(entry.name);
      types[entry.name] = entry.type;
    },
    data: () => undefined,
    entryEnd: () => undefined,
  });
  reader.push(gz ? gunzipSync(bytes) : bytes);
  reader.end();
  return { names, types };
}

describe('Diff', () => {
  it('writes a gzip layer with its DiffID label; our Apply rebuilds the upper tree', async () => {
    const layer = await ourDiff('', { 'example.com/owner': 'test' });
    expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const info = (await upstream.content.Info({ digest: layer.digest }, { namespace: NAMESPACE })).info!;
    expect(info.size.toString()).toBe(layer.size.toString());
    expect(info.labels['example.com/owner']).toBe('test');
    const target = await copyOfLower();
    const applied = await plugin.client.Apply({ diff: layer, mounts: [{ type: 'bind', source: target, options: ['rbind'] }] }, { namespace: NAMESPACE });
    expect(info.labels['containerd.io/uncompressed']).toBe(applied.applied!.digest);
    expect(await snapshotTree(target)).toEqual(await expectedUpper());
  });

  it('orders entries sorted, parents first, whiteouts as .wh. files, hard links kept, sockets left out', async () => {
    const layer = await ourDiff('application/vnd.oci.image.layer.v1.tar');
    expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    const { names, types } = await tarNames(layer.digest, false);
    for (const [i, name] of names.entries()) {
      const parent = name.replace(/\/$/, '').split('/').slice(0, -1).join('/');
      if (parent) expect(names.slice(0, i)).toContain(`${parent}/`);
    }
    expect(names).toContain('etc/conf.d/.wh.a.conf');
    expect(names).toContain('var/.wh.cache');
    expect(names).not.toContain('etc/keep');
    expect(names.some((name) => name.includes('sock'))).toBe(false);
    expect(types['hl-b']).toBe('link');
    const again = await ourDiff('application/vnd.oci.image.layer.v1.tar');
    expect((await tarNames(again.digest, false)).names).toEqual(names);
  });

  it('writes zstd when asked and refuses unknown media types', async () => {
    const layer = await ourDiff('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    const target = await copyOfLower();
    await plugin.client.Apply({ diff: layer, mounts: [{ type: 'bind', source: target, options: ['rbind'] }] }, { namespace: NAMESPACE });
    expect(await snapshotTree(target)).toEqual(await expectedUpper());
    await expect(ourDiff('application/x-unknown')).rejects.toMatchObject({ code: Code.UNIMPLEMENTED });
  });

  it("is applied exactly by upstream containerd's applier onto an upstream overlay snapshot", async () => {
    const layer = await ourDiff();
    const base = await upstream.diff.Diff({ left: [], right: bind(lower), ref: 'base-layer' }, { namespace: NAMESPACE });
    const opts = { namespace: NAMESPACE };
    const s = upstream.snapshots;
    const baseMounts = (await s.Prepare({ snapshotter: 'overlayfs', key: 'base-active' }, opts)).mounts;
    await upstream.diff.Apply({ diff: base.diff, mounts: baseMounts }, opts);
    await s.Commit({ snapshotter: 'overlayfs', name: 'base', key: 'base-active' }, opts);
    const mounts = (await s.Prepare({ snapshotter: 'overlayfs', key: 'top-active', parent: 'base' }, opts)).mounts;
    expect(mounts[0]!.type).toBe('overlay');
    await upstream.diff.Apply({ diff: layer, mounts }, opts);
    const merged = join(dir, 'upstream-merged');
    await mkdir(merged);
    const m = mounts[0]!;
    await runOk('mount', ['-t', m.type, '-o', m.options.join(','), m.source, merged]);
    try {
      expect(await snapshotTree(merged)).toEqual(await expectedUpper());
    } finally {
      await runOk('umount', [merged]);
    }
  });

  it("applies a layer made by upstream containerd's differ exactly", async () => {
    const res = await upstream.diff.Diff({ left: bind(lower), right: bind(upper), ref: 'upstream-diff' }, { namespace: NAMESPACE });
    const target = await copyOfLower();
    const applied = await plugin.client.Apply({ diff: res.diff, mounts: [{ type: 'bind', source: target, options: ['rbind'] }] }, { namespace: NAMESPACE });
    const info = (await upstream.content.Info({ digest: res.diff!.digest }, { namespace: NAMESPACE })).info!;
    expect(applied.applied!.digest).toBe(info.labels['containerd.io/uncompressed']);
    // Upstream 1.6's differ carries only security.capability among xattrs.
    expect(withoutUserXattrs(await snapshotTree(target))).toEqual(withoutUserXattrs(await expectedUpper()));
  });

  it('reads an overlay mount as the upper tree (kernel whiteouts become .wh. files)', async () => {
    const ov = join(dir, 'ov');
    for (const d of ['upper', 'work', 'merged']) await mkdir(join(ov, d), { recursive: true });
    const options = [`lowerdir=${lower}`, `upperdir=${join(ov, 'upper')}`, `workdir=${join(ov, 'work')}`];
    const merged = join(ov, 'merged');
    await runOk('mount', ['-t', 'overlay', '-o', options.join(','), 'overlay', merged]);
    try {
      await rm(join(merged, 'var/cache'), { recursive: true });
      await writeFile(join(merged, 'etc/hostname'), 'via overlay\n');
      await mkdir(join(merged, 'new'));
      await writeFile(join(merged, 'new/file'), 'n');
      const expected = await snapshotTree(merged);
      const res = await plugin.client.Diff({ left: bind(lower), right: [{ type: 'overlay', source: 'overlay', options }], ref: 'ov-diff' }, { namespace: NAMESPACE });
      const { names } = await tarNames(res.diff!.digest, true);
      expect(names).toContain('var/.wh.cache');
      const target = await copyOfLower();
      await plugin.client.Apply({ diff: res.diff, mounts: [{ type: 'bind', source: target, options: ['rbind'] }] }, { namespace: NAMESPACE });
      expect(await snapshotTree(target)).toEqual(expected);
    } finally {
      await runOk('umount', [merged]);
    }
    expect((await lstat(join(ov, 'upper/var/cache'))).isCharacterDevice()).toBe(true);
  });
});
