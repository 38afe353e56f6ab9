/**
 * Every tar entry type and attribute, and opaque directories, applied to a
 * plain directory and to an overlay upper directory (then mounted).
 */
import { lstat, mkdir, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getAttributeSync } from '@napi-rs/xattr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, runOk, tempDir } from '@boxd/test-utils';
import { ingest, NAMESPACE, type DiffPlugin, type Upstream, startTestEnv, type TestEnv } from './harness.js';
import { lowerLayer, makeTar, type TarSpec } from './tars.js';

const TAR = 'application/vnd.oci.image.layer.v1.tar';
let dir: string;
let env: TestEnv;
let upstream: Upstream;
let plugin: DiffPlugin;
let n = 0;

async function applyTo(mounts: { type: string; source: string; options: string[] }[], entries: TarSpec[]) {
  const blob = await ingest(upstream, await makeTar(entries), TAR);
  return (await plugin.client.Apply({ diff: blob, mounts }, { namespace: NAMESPACE })).applied!;
}

const bindTo = (root: string) => [{ type: 'bind', source: root, options: ['rbind'] }];

const upperLayer: TarSpec[] = [
  { name: 'data/', type: 'directory', mode: 0o755 },
  { name: 'data/keep-by-layer', content: 'written before the marker' },
  { name: 'data/nested/kept', content: 'no directory entry of its own' },
  { name: 'data/.wh..wh..opq', content: '' },
  { name: 'data/added-after', content: 'written after the marker' },
  { name: '.wh.gone', content: '', uid: 5, gid: 6 },
  { name: 'attrs/setuid', content: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 100, mtime: new Date(1_600_000_000_000) },
  { name: 'attrs/sticky/', type: 'directory', mode: 0o1777, mtime: new Date(1_500_000_000_000) },
  { name: 'attrs/sticky/f', content: 'f', mtime: new Date(1_500_000_100_000) },
  { name: 'attrs/cap', content: 'elf', pax: { 'SCHILY.xattr.user.comment': 'plain text' } },
  { name: 'attrs/link', type: 'symlink', linkname: 'setuid', uid: 3, gid: 4 },
  { name: 'attrs/hard', type: 'link', linkname: 'attrs/setuid' },
  { name: 'attrs/fifo', type: 'fifo', mode: 0o640 },
  { name: 'attrs/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
  { name: 'attrs/nested/dirs/file', content: 'parents made on the way' },
];

/** tar-stream's PAX encoder writes values as text; binary xattrs go through our own header encoder in the Diff tests. */
async function checkAttributes(root: string): Promise<void> {
  const setuid = await stat(join(root, 'attrs/setuid'));
  expect(setuid.mode & 0o7777).toBe(0o4755);
  expect([setuid.uid, setuid.gid]).toEqual([1000, 100]);
  expect(setuid.mtimeMs).toBe(1_600_000_000_000);
  expect(setuid.nlink).toBe(2);
  expect((await stat(join(root, 'attrs/hard'))).ino).toBe(setuid.ino);
  const sticky = await stat(join(root, 'attrs/sticky'));
  expect(sticky.mode & 0o7777).toBe(0o1777);
  // Directory mtimes are set after their contents were written.
  expect(sticky.mtimeMs).toBe(1_500_000_000_000);
  expect(getAttributeSync(join(root, 'attrs/cap'), 'user.comment')?.toString()).toBe('plain text');
  const link = await lstat(join(root, 'attrs/link'));
  expect(await readlink(join(root, 'attrs/link'))).toBe('setuid');
  expect([link.uid, link.gid]).toEqual([3, 4]);
  expect((await lstat(join(root, 'attrs/fifo'))).isFIFO()).toBe(true);
  expect((await lstat(join(root, 'attrs/fifo'))).mode & 0o777).toBe(0o640);
  const dev = await lstat(join(root, 'attrs/null'));
  expect(dev.isCharacterDevice()).toBe(true);
  expect(dev.rdev).toBe(259);
  expect(await readFile(join(root, 'attrs/nested/dirs/file'), 'utf8')).toBe('parents made on the way');
}

beforeAll(async () => {
  dir = await tempDir('bx-dfe-');
  env = await startTestEnv(dir, 'allow_devices = true');
  ({ upstream, plugin } = env);
});

afterAll(async () => {
  await env?.stop();
  await cleanupTempDirs();
});

describe('entry types and opaque directories', () => {
  it('in a plain directory: opaque deletes lower entries only, whiteouts delete', async () => {
    const root = join(dir, `plain${++n}`);
    await mkdir(root);
    await applyTo(bindTo(root), lowerLayer);
    await applyTo(bindTo(root), upperLayer);
    expect((await readdir(join(root, 'data'))).sort()).toEqual(['added-after', 'keep-by-layer', 'nested']);
    expect(await readdir(join(root, 'data/nested'))).toEqual(['kept']);
    expect(await readFile(join(root, 'data/keep-by-layer'), 'utf8')).toBe('written before the marker');
    expect(await readdir(root)).not.toContain('gone');
    await checkAttributes(root);
  });

  it('in an overlay upper dir: opaque xattr and whiteout devices; the mounted overlay agrees', async () => {
    const base = join(dir, `ov${++n}`);
    const [low, up, work, merged] = ['low', 'up', 'work', 'merged'].map((d) => join(base, d));
    for (const d of [low, up, work, merged]) await mkdir(d!, { recursive: true });
    await applyTo(bindTo(low!), lowerLayer);
    await applyTo([{ type: 'overlay', source: 'overlay', options: [`upperdir=${up}`, `workdir=${work}`, `lowerdir=${low}`] }], upperLayer);
    expect(getAttributeSync(join(up!, 'data'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    const whiteout = await lstat(join(up!, 'gone'));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0 && (whiteout.mode & 0o7777) === 0).toBe(true);
    expect([whiteout.uid, whiteout.gid]).toEqual([5, 6]);
    // attrs/ was not in the upper layer's tar as a directory entry: made from the lower one's attributes.
    const attrs = await stat(join(up!, 'attrs'));
    expect([attrs.mode & 0o7777, attrs.uid, attrs.gid]).toEqual([0o750, 7, 8]);
    // The lower layer itself was not touched.
    expect(await readFile(join(low!, 'data/old-1'), 'utf8')).toBe('old');
    await runOk('mount', ['-t', 'overlay', '-o', `ro,lowerdir=${up}:${low}`, 'overlay', merged!]);
    try {
      expect((await readdir(join(merged!, 'data'))).sort()).toEqual(['added-after', 'keep-by-layer', 'nested']);
      expect(await readdir(join(merged!, 'data/nested'))).toEqual(['kept']);
      expect(await readdir(merged!)).not.toContain('gone');
      await checkAttributes(merged!);
    } finally {
      await runOk('umount', [merged!]);
    }
  });

  it('mounts a mount list it cannot write directly on a temp dir, applies with delete semantics, unmounts', async () => {
    const base = join(dir, `tm${++n}`);
    const [below, above] = ['below', 'above'].map((d) => join(base, d));
    for (const d of [below, above]) await mkdir(d!, { recursive: true });
    await writeFile(join(below!, 'old'), 'below');
    await writeFile(join(above!, 'old'), 'above');
    // Two mounts stacked on one target: the second one is what the tree shows.
    await applyTo([...bindTo(below!), ...bindTo(above!)], [{ name: 'new', content: 'top' }, { name: '.wh.old', content: '' }]);
    expect((await readdir(above!)).sort()).toEqual(['new']);
    expect(await readdir(below!)).toEqual(['old']);
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mountinfo).not.toContain(join(dir, 'diff-root'));
  });
});
