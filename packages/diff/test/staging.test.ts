/**
 * Unpacking ahead (boxd.diff.v1.Staging): a staged layer claimed by an Apply
 * gives the very tree a normal apply gives, and every case a staged tree
 * cannot serve falls back to a normal apply. Stages nobody claims go away.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { getAttributeSync } from '@napi-rs/xattr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxdDiff, Code } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { cleanupTempDirs, runOk, tempDir, waitFor } from '@boxd/test-utils';
import { ingest, NAMESPACE, snapshotTree, startDiffPlugin, startTestEnv, diffConfigFor, type Blob, type DiffPlugin, type TestEnv } from './harness.js';
import { lowerLayer, makeTar, type TarSpec } from './tars.js';

const TAR = 'application/vnd.oci.image.layer.v1.tar';
const TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
type Mounts = { type: string; source: string; options: string[] }[];

let dir: string;
let env: TestEnv;
let staging: ReturnType<typeof createGrpcClient<typeof boxdDiff.StagingService>>;
let n = 0;

/** Every kind of entry and attribute, whiteouts and opaque markers, and every parent listed. */
const upperLayer: TarSpec[] = [
  { name: 'data/', type: 'directory', mode: 0o755, mtime: new Date(1_400_000_000_000) },
  { name: 'data/nested/', type: 'directory', mode: 0o700, uid: 9, gid: 9 },
  { name: 'data/nested/kept', content: 'kept' },
  { name: 'data/.wh..wh..opq', content: '' },
  { name: '.wh..wh..opq', content: '' },
  { name: '.wh.gone', content: '', uid: 5, gid: 6 },
  { name: 'attrs/', type: 'directory', mode: 0o711, uid: 1, gid: 2 },
  { name: 'attrs/setuid', content: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 100, mtime: new Date(1_600_000_000_000) },
  { name: 'attrs/cap', content: 'elf', pax: { 'SCHILY.xattr.user.comment': 'plain text' } },
  { name: 'attrs/link', type: 'symlink', linkname: 'setuid', uid: 3, gid: 4 },
  { name: 'attrs/hard', type: 'link', linkname: 'attrs/setuid' },
  { name: 'attrs/fifo', type: 'fifo', mode: 0o640 },
  { name: 'attrs/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
];

/** A layer whose parents are not listed: over lower dirs they take the lowers' attributes. */
const impliedParents: TarSpec[] = [{ name: 'attrs/deep/file', content: 'parents made on the way' }];

const bind = (root: string): Mounts => [{ type: 'bind', source: root, options: ['rbind'] }];

async function overlayOn(lower: string): Promise<{ upper: string; mounts: Mounts }> {
  const base = join(dir, `ov${++n}`);
  const upper = join(base, 'fs');
  await mkdir(upper, { recursive: true });
  await mkdir(join(base, 'work'));
  return { upper, mounts: [{ type: 'overlay', source: 'overlay', options: [`workdir=${join(base, 'work')}`, `upperdir=${upper}`, `lowerdir=${lower}`] }] };
}

async function emptyDir(): Promise<string> {
  const path = join(dir, `d${++n}`);
  await mkdir(path);
  return path;
}

function apply(plugin: DiffPlugin, blob: Blob, mounts: Mounts) {
  return plugin.client.Apply({ diff: blob, mounts }, { namespace: NAMESPACE }).then((r) => r.applied!);
}

async function logLines(plugin: DiffPlugin): Promise<Array<{ msg: string; digest?: string; claimed?: boolean }>> {
  const text = await readFile(plugin.logPath, 'utf8');
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; digest?: string; claimed?: boolean });
}

/** Whether the last Apply of a staged blob took the staged tree, as the plugin logged it. */
async function claimed(blob: Blob, plugin = env.plugin): Promise<boolean | undefined> {
  return (await logLines(plugin)).reverse().find((l) => l.digest === blob.digest && l.msg === 'staged layer looked up')?.claimed;
}

async function stage(blob: Blob, client = staging): Promise<boolean> {
  return (await client.Stage({ digest: blob.digest, size: blob.size }, { namespace: NAMESPACE })).staged;
}

const stagingDir = (root = join(dir, 'diff-root')) => join(root, 'staging');
const stagingEmpty = (root?: string) => waitFor(async () => (await readdir(stagingDir(root))).length === 0, 10_000);

/**
 * Trees compared with overlay's opaque markers included (snapshotTree leaves trusted.overlay.* out).
 * A whiteout's mtime is when it was applied (as upstream sets none): two applies a second
 * apart differ there, so it is left out.
 */
async function fullTree(root: string) {
  const tree = await snapshotTree(root);
  for (const entry of Object.values(tree) as Array<{ type?: string; rdev?: number; mtime?: number }>) if (entry.type === 'char' && entry.rdev === 0) delete entry.mtime;
  const opaque = Object.keys(tree).filter((path) => tree[path]!.type === 'dir' && getAttributeSync(join(root, path), 'trusted.overlay.opaque')?.toString() === 'y');
  return { tree, opaque, rootOpaque: getAttributeSync(root, 'trusted.overlay.opaque')?.toString() };
}

beforeAll(async () => {
  dir = await tempDir('bx-dfs-');
  env = await startTestEnv(dir, 'allow_devices = true', 'debug');
  staging = createGrpcClient(boxdDiff.StagingService, env.plugin.grpcAddress);
});

afterAll(async () => {
  staging?.close();
  await env?.stop();
  await cleanupTempDirs();
});

describe('claiming a staged layer', () => {
  let lower: string;
  beforeAll(async () => {
    lower = await emptyDir();
    await apply(env.plugin, await ingest(env.upstream, await makeTar(lowerLayer), TAR), bind(lower));
  });

  it('onto an empty overlay upper dir: the tree a normal apply makes, from the staged inodes, without reading the blob again', async () => {
    const blob = await ingest(env.upstream, gzipSync(await makeTar(upperLayer)), TAR_GZIP);
    const reference = await overlayOn(lower);
    const expected = await apply(env.plugin, blob, reference.mounts);

    expect(await stage(blob)).toBe(true);
    const [stageDir] = await readdir(stagingDir());
    const stagedInode = (await stat(join(stagingDir(), stageDir!, 'fs/attrs/setuid'))).ino;
    // Only a claim can still apply it.
    await env.upstream.content.Delete({ digest: blob.digest }, { namespace: NAMESPACE });

    const target = await overlayOn(lower);
    const applied = await apply(env.plugin, blob, target.mounts);
    expect(applied).toEqual(expected);
    expect(await fullTree(target.upper)).toEqual(await fullTree(reference.upper));
    expect((await fullTree(target.upper)).rootOpaque).toBe('y');
    expect((await stat(join(target.upper, 'attrs/setuid'))).ino).toBe(stagedInode);
    expect(await claimed(blob)).toBe(true);
    await stagingEmpty();
  });

  it('onto an empty bind-mounted directory (a first layer)', async () => {
    const blob = await ingest(env.upstream, await makeTar(lowerLayer), TAR);
    const reference = await emptyDir();
    const expected = await apply(env.plugin, blob, bind(reference));
    expect(await stage(blob)).toBe(true);
    await env.upstream.content.Delete({ digest: blob.digest }, { namespace: NAMESPACE });
    const target = await emptyDir();
    expect(await apply(env.plugin, blob, bind(target))).toEqual(expected);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(reference));
    expect(await claimed(blob)).toBe(true);
    await stagingEmpty();
  });

  it('right after Stage, waiting for the stage when it still runs', async () => {
    const many = Array.from({ length: 300 }, (_, i): TarSpec => ({ name: `f${i}`, content: Buffer.alloc(30_000, i) }));
    const blob = await ingest(env.upstream, gzipSync(await makeTar(many)), TAR_GZIP);
    const reference = await emptyDir();
    const expected = await apply(env.plugin, blob, bind(reference));
    const target = await emptyDir();
    const staged = stage(blob);
    // Apply once the stage has begun (the two calls travel on different connections).
    await waitFor(async () => (await readdir(stagingDir())).length === 1, 10_000, 5);
    expect(await apply(env.plugin, blob, bind(target))).toEqual(expected);
    expect(await staged).toBe(true);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(reference));
    expect(await claimed(blob)).toBe(true);
    await stagingEmpty();
  });
});

describe('falling back to a normal apply', () => {
  let lower: string;
  beforeAll(async () => {
    lower = await emptyDir();
    await apply(env.plugin, await ingest(env.upstream, await makeTar(lowerLayer), TAR), bind(lower));
  });

  /** Applies normally (the reference), stages, applies again onto `target`: same result, stage gone. */
  async function sameAsNormal(entries: TarSpec[], reference: { root: string; mounts: Mounts }, target: { root: string; mounts: Mounts }) {
    const blob = await ingest(env.upstream, await makeTar(entries), TAR);
    const expected = await apply(env.plugin, blob, reference.mounts);
    expect(await stage(blob)).toBe(true);
    expect(await apply(env.plugin, blob, target.mounts)).toEqual(expected);
    expect(await fullTree(target.root)).toEqual(await fullTree(reference.root));
    expect(await claimed(blob)).toBe(false);
    await stagingEmpty();
  }

  const overlayTarget = async () => {
    const { upper, mounts } = await overlayOn(lower);
    return { root: upper, mounts };
  };
  const bindTarget = async () => {
    const root = await emptyDir();
    return { root, mounts: bind(root) };
  };

  it('when the layer leaves parents to the lower dirs', async () => {
    const reference = await overlayTarget();
    await sameAsNormal(impliedParents, reference, await overlayTarget());
    const attrs = await stat(join(reference.root, 'attrs'));
    expect([attrs.mode & 0o7777, attrs.uid, attrs.gid]).toEqual([0o750, 7, 8]);
  });

  it('when whiteouts land in a plain directory', async () => {
    await sameAsNormal(upperLayer, await bindTarget(), await bindTarget());
  });

  it('when the target is not empty', async () => {
    const targets = [await bindTarget(), await bindTarget()];
    for (const t of targets) await writeFile(join(t.root, 'already-here'), 'x');
    await sameAsNormal(lowerLayer, targets[0]!, targets[1]!);
  });

  it('when the target is on another filesystem', async () => {
    const mountpoint = await emptyDir();
    await runOk('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mountpoint]);
    try {
      await sameAsNormal(lowerLayer, await bindTarget(), { root: mountpoint, mounts: bind(mountpoint) });
    } finally {
      await runOk('umount', [mountpoint]);
    }
  });

  it('when the media type says another compression', async () => {
    const blob = await ingest(env.upstream, gzipSync(await makeTar(lowerLayer)), TAR_GZIP);
    expect(await stage(blob)).toBe(true);
    const err = await apply(env.plugin, { ...blob, mediaType: TAR }, bind(await emptyDir())).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(await claimed(blob)).toBe(false);
    await stagingEmpty();
  });
});

describe('stages nobody claims', () => {
  let plugin: DiffPlugin;
  let client: typeof staging;
  const root = () => join(dir, 'short', 'diff-root');

  beforeAll(async () => {
    await mkdir(join(stagingDir(root()), 'left-by-an-earlier-run'), { recursive: true });
    plugin = await startDiffPlugin(join(dir, 'short'), diffConfigFor(env.upstream, 'staging_ttl_seconds = 1\nstaging_max_bytes = 200000'), 'debug');
    client = createGrpcClient(boxdDiff.StagingService, plugin.grpcAddress);
  });

  afterAll(async () => {
    client?.close();
    await plugin?.stop();
  });

  it('live in a staging dir marked as a top directory where the filesystem has the flag (ext2/3/4)', async () => {
    const probe = await emptyDir();
    const supported = await runOk('chattr', ['+T', probe]).then(
      () => true,
      () => false,
    );
    const attributes = supported ? (await runOk('lsattr', ['-d', stagingDir(root())])).stdout.split(' ')[0]! : '';
    expect(attributes.includes('T')).toBe(supported);
  });

  it('are removed after their time, and trees of an earlier run at start', async () => {
    expect(await readdir(stagingDir(root()))).toEqual([]);
    const blob = await ingest(env.upstream, await makeTar(lowerLayer), TAR);
    expect(await stage(blob, client)).toBe(true);
    expect(await readdir(stagingDir(root()))).toHaveLength(1);
    await stagingEmpty(root());
  });

  it('are not made for blobs that are not layers, nor past the byte bound', async () => {
    const config = await ingest(env.upstream, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' })), 'application/vnd.oci.image.config.v1+json');
    expect(await stage(config, client)).toBe(false);
    await stagingEmpty(root());

    const big = await ingest(env.upstream, await makeTar([{ name: 'big', content: Buffer.alloc(300_000, 1) }]), TAR);
    expect(await stage(big, client)).toBe(false);
    expect(await readdir(stagingDir(root()))).toEqual([]);
    const small = await ingest(env.upstream, await makeTar([{ name: 'small', content: 'small' }]), TAR);
    expect(await stage(small, client)).toBe(true);
    expect(await stage(small, client)).toBe(false);
  });
});
