/**
 * Applying real multi-layer images (built by umoci: whiteouts, replaced
 * directories, setuid files, symlinks) through our Diff service, reading
 * blobs from upstream containerd's content store, compared with umoci's own
 * unpack of the same image.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestImage, cleanupTempDirs, runOk, tempDir, unpackTestImage, type TestImage } from '@boxd/test-utils';
import { ingest, snapshotTree, NAMESPACE, type Blob, type DiffPlugin, type Upstream, startTestEnv, type TestEnv } from './harness.js';
import { layoutLayers, type LayoutLayer } from './oci.js';

let dir: string;
let env: TestEnv;
let upstream: Upstream;
let plugin: DiffPlugin;
let image: TestImage;
let layers: LayoutLayer[];
let blobs: Blob[];
let expected: Awaited<ReturnType<typeof snapshotTree>>;

beforeAll(async () => {
  dir = await tempDir('bx-dfi-');
  image = await buildTestImage({
    dir,
    name: 'difftest',
    layers: [
      {
        files: {
          '/etc/app/config': { content: 'key=1\n', mode: 0o640 },
          '/opt/data/a.txt': 'alpha\n',
          '/opt/data/sub/b.bin': Buffer.alloc(300_000, 7),
          '/usr/local/bin/tool': { content: '#!/bin/sh\necho tool\n', mode: 0o4755 },
        },
        dirs: ['/var/lib/app/cache'],
        symlinks: { '/opt/link': 'data/a.txt', '/opt/abs': '/etc/app/config' },
      },
      { remove: ['/opt/data/a.txt', '/etc/hostname'], files: { '/opt/data/c.txt': 'gamma\n', '/etc/app/config': 'key=2\n' } },
      { remove: ['/opt/data', '/var/lib/app'], files: { '/opt/data/new.txt': 'new\n' }, dirs: ['/var/lib/app'] },
    ],
  });
  layers = await layoutLayers(image.layout, image.tag);
  const bundle = await unpackTestImage(image, join(dir, 'umoci-bundle'));
  expected = await snapshotTree(join(bundle, 'rootfs'), { dirMtimes: false });
  env = await startTestEnv(dir);
  ({ upstream, plugin } = env);
  blobs = [];
  for (const layer of layers) blobs.push(await ingest(upstream, layer.bytes, layer.mediaType));
});

afterAll(async () => {
  await env?.stop();
  await cleanupTempDirs();
});

describe('Apply of an umoci image', () => {
  it('applies the same image recompressed by skopeo as zstd', async () => {
    const layout = join(dir, 'zstd-layout');
    await runOk('skopeo', ['copy', '--dest-compress-format', 'zstd', `oci:${image.layout}:${image.tag}`, `oci:${layout}:${image.tag}`]);
    const zstdLayers = await layoutLayers(layout, image.tag);
    expect(zstdLayers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+zstd')).toBe(true);
    const root = join(dir, 'zstd-root');
    await mkdir(root);
    for (const [i, layer] of zstdLayers.entries()) {
      const blob = await ingest(upstream, layer.bytes, layer.mediaType);
      const res = await plugin.client.Apply({ diff: blob, mounts: [{ type: 'bind', source: root, options: ['rbind'] }] }, { namespace: NAMESPACE });
      expect(res.applied?.digest).toBe(layers[i]!.diffId);
    }
    expect(await snapshotTree(root, { dirMtimes: false })).toEqual(expected);
  });

  it('builds the same tree as umoci in a plain directory, returning each DiffID', async () => {
    const root = join(dir, 'plain');
    await mkdir(root);
    for (const [i, blob] of blobs.entries()) {
      const res = await plugin.client.Apply({ diff: blob, mounts: [{ type: 'bind', source: root, options: ['rbind', 'rw'] }] }, { namespace: NAMESPACE });
      expect(res.applied?.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
      expect(res.applied?.digest).toBe(layers[i]!.diffId);
      expect(Number(res.applied?.size)).toBeGreaterThan(0);
    }
    expect(await snapshotTree(root, { dirMtimes: false })).toEqual(expected);
  });

  it('applies into overlay upper dirs; the mounted overlay shows the same tree', async () => {
    const stack = await layerDirs('ov');
    for (const [i, blob] of blobs.entries()) {
      const res = await plugin.client.Apply({ diff: blob, mounts: stack.mountsFor(i) }, { namespace: NAMESPACE });
      expect(res.applied?.digest).toBe(layers[i]!.diffId);
    }
    // The second added layer deleted /etc/hostname: in its upper dir that is overlayfs' whiteout, a 0/0 char device.
    const whiteout = await snapshotTree(stack.uppers[2]!, { mtimes: false });
    expect(whiteout['etc/hostname']).toMatchObject({ type: 'char', mode: 0, rdev: 0 });
    await expectMergedTree(stack.uppers, 'ov-merged');
  });

  it('applies all layers at once, each into its own overlay upper dir', async () => {
    const stack = await layerDirs('par');
    const applied = await Promise.all(blobs.map((blob, i) => plugin.client.Apply({ diff: blob, mounts: stack.mountsFor(i) }, { namespace: NAMESPACE })));
    expect(applied.map((r) => r.applied?.digest)).toEqual(layers.map((l) => l.diffId));
    await expectMergedTree(stack.uppers, 'par-merged');
  });
});

/** One upper and work dir per layer; layer i is applied with the uppers below it as lowerdirs. */
async function layerDirs(prefix: string) {
  const uppers = blobs.map((_, i) => join(dir, `${prefix}${i}`, 'fs'));
  const works = blobs.map((_, i) => join(dir, `${prefix}${i}`, 'work'));
  for (const path of [...uppers, ...works]) await mkdir(path, { recursive: true });
  const mountsFor = (i: number) =>
    i === 0
      ? [{ type: 'bind', source: uppers[0]!, options: ['rbind', 'rw'] }]
      : [{ type: 'overlay', source: 'overlay', options: [`workdir=${works[i]}`, `upperdir=${uppers[i]}`, `lowerdir=${uppers.slice(0, i).reverse().join(':')}`] }];
  return { uppers, mountsFor };
}

/** Mounts the stacked upper dirs read-only and compares what overlayfs shows with umoci's unpack. */
async function expectMergedTree(uppers: string[], name: string): Promise<void> {
  const merged = join(dir, name);
  await mkdir(merged);
  await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...uppers].reverse().join(':')}`, merged]);
  try {
    expect(await snapshotTree(merged, { dirMtimes: false })).toEqual(expected);
  } finally {
    await runOk('umount', [merged]);
  }
}
