/**
 * Upstream containerd 1.6 using boxd's snapshotters as `[proxy_plugins]`:
 * ctr imports images into them, runs containers on them, commits and removes
 * snapshots through them, and its garbage collector empties them again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImage,
  cleanupTempDirs,
  ctrOk,
  runOk,
  startContainerd,
  tempDir,
  waitFor,
  waitForSocket,
  type Containerd,
  type TestImage,
} from '@boxd/test-utils';

const PLUGINS = {
  'boxd-overlay': { pkg: 'snapshotter-overlay', upperOf: (dir: string) => join(dir, 'fs') },
  'boxd-native': { pkg: 'snapshotter-native', upperOf: (dir: string) => dir },
} as const;
type PluginName = keyof typeof PLUGINS;

interface RunningSnapshotter {
  root: string;
  child: ChildProcess;
  exited: Promise<unknown>;
}

let dir = '';
let containerd: Containerd | undefined;
let image: TestImage;
const snapshotters = new Map<PluginName, RunningSnapshotter>();

function binOf(pkg: string): string {
  return fileURLToPath(new URL(`../../packages/${pkg}/dist/bin.js`, import.meta.url));
}

/** Starts a snapshotter bin as its own process, the way an operator would. */
async function startSnapshotter(name: PluginName): Promise<string> {
  const root = join(dir, name);
  const grpc = join(dir, `${name}.grpc`);
  const log = join(dir, `${name}.log`);
  await mkdir(root);
  const child = spawn(
    process.execPath,
    [binOf(PLUGINS[name].pkg), '--address', join(dir, `${name}.ttrpc`), '--grpc-address', grpc, '--root', root, '--log-level', 'debug'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const logLines: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => logLines.push(b));
  const exited = once(child, 'exit');
  exited.then(() => writeFile(log, Buffer.concat(logLines))).catch(() => undefined);
  snapshotters.set(name, { root, child, exited });
  await waitForSocket(grpc, 15_000);
  return grpc;
}

const ctr = (args: string[]) => ctrOk(containerd!.address, args, { timeoutMs: 120_000 });

/** Runs a garbage collection to completion, so none is pending afterwards. */
async function settleGarbageCollection(): Promise<void> {
  await ctr(['leases', 'create', '--id', 'e2e-settle']);
  await ctr(['leases', 'rm', '--sync', 'e2e-settle']);
}

/** Directories under a snapshotter's root that hold snapshots. */
async function snapshotDirs(name: PluginName): Promise<string[]> {
  return readdir(join(snapshotters.get(name)!.root, 'snapshots'));
}

beforeAll(async () => {
  dir = await tempDir('bx-px-');
  const proxyPlugins: Record<string, { type: 'snapshot'; address: string }> = {};
  for (const name of Object.keys(PLUGINS) as PluginName[]) {
    proxyPlugins[name] = { type: 'snapshot', address: await startSnapshotter(name) };
  }
  image = await buildTestImage({
    dir,
    name: 'bxsnap',
    layers: [
      { files: { '/hello.txt': 'from layer two\n', '/gone.txt': 'soon deleted\n' } },
      { files: { '/kept.txt': 'kept\n' }, remove: ['/gone.txt'] },
    ],
  });
  containerd = await startContainerd({ dir: join(dir, 'cd'), proxyPlugins });
}, 180_000);

afterAll(async () => {
  await containerd?.stop();
  for (const { child, exited } of snapshotters.values()) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  }
  await cleanupTempDirs();
});

describe.each(Object.keys(PLUGINS) as PluginName[])('upstream containerd with %s as a proxy snapshotter', (name) => {
  it('is loaded as a snapshotter plugin', async () => {
    const { stdout } = await ctr(['plugins', 'ls', `id==${name}`]);
    expect(stdout).toMatch(new RegExp(`io\\.containerd\\.snapshotter\\.v1\\s+${name}\\s+\\S+\\s+ok`));
  });

  it('imports an image into it and lists the layers', async () => {
    await ctr(['images', 'import', '--snapshotter', name, image.archive]);
    const { stdout } = await ctr(['snapshots', '--snapshotter', name, 'ls']);
    const committed = stdout.split('\n').filter((l) => /\bCommitted\b/.test(l));
    expect(committed).toHaveLength(3);
    expect(await snapshotDirs(name)).toHaveLength(3);
  });

  it('runs a container on it that sees every layer, whiteouts applied', async () => {
    const { stdout } = await ctr([
      'run', '--rm', '--snapshotter', name, image.ref, `run-${name}`,
      'sh', '-c', 'cat /hello.txt /kept.txt; test -e /gone.txt || echo ok',
    ]);
    expect(stdout).toBe('from layer two\nkept\nok\n');
    // --rm removed the container's snapshot from containerd; the layers stay.
    const { stdout: ls } = await ctr(['snapshots', '--snapshotter', name, 'ls']);
    expect(ls).not.toContain(`run-${name}`);
  });

  it("commits a container's changes into a new layer", async () => {
    const id = `keep-${name}`;
    const layer = `${id}-layer`;
    const view = `${id}-view`;
    const protect = (key: string) => ctr(['snapshots', '--snapshotter', name, 'label', key, 'containerd.io/gc.root=e2e']);
    await ctr(['run', '--snapshotter', name, image.ref, id, 'sh', '-c', 'echo written > /new.txt']);
    // ctr run ends by deleting its lease, which schedules a garbage collection. Let it
    // finish: commits, views and labels are no deletions, so none runs again until the
    // container is removed at the end, and by then both new snapshots carry root labels.
    await settleGarbageCollection();
    await ctr(['snapshots', '--snapshotter', name, 'commit', layer, id]);
    await protect(layer);
    const { stdout: info } = await ctr(['snapshots', '--snapshotter', name, 'info', layer]);
    expect(JSON.parse(info)).toMatchObject({ Name: layer, Kind: 'Committed' });

    // Mount a view of it the way ctr prints it, and read the file back.
    const target = join(dir, `mnt-${name}`);
    await mkdir(target);
    const { stdout: mountCmd } = await ctr(['snapshots', '--snapshotter', name, 'view', '--target', target, view, layer]);
    await protect(view);
    expect(mountCmd).toMatch(/^mount /);
    await runOk('sh', ['-c', mountCmd]);
    try {
      expect(await readFile(join(target, 'new.txt'), 'utf8')).toBe('written\n');
      expect(await readFile(join(target, 'kept.txt'), 'utf8')).toBe('kept\n');
    } finally {
      await runOk('umount', [target]);
    }
    const { stdout: usage } = await ctr(['snapshots', '--snapshotter', name, 'usage', layer]);
    expect(usage).toMatch(new RegExp(`${layer}\\s+[0-9.]+ \\S+\\s+[1-9]`));
    await ctr(['containers', 'rm', id]);
  });

  it('removing the snapshots and the image empties its root', async () => {
    const id = `keep-${name}`;
    await ctr(['snapshots', '--snapshotter', name, 'rm', `${id}-view`]);
    await ctr(['snapshots', '--snapshotter', name, 'rm', `${id}-layer`]);
    await ctr(['images', 'rm', '--sync', image.ref]);
    // Not referenced anymore: containerd's GC removes them from the backend and calls Cleanup.
    await waitFor(async () => (await snapshotDirs(name)).length === 0, 20_000);
    const { stdout } = await ctr(['snapshots', '--snapshotter', name, 'ls']);
    expect(stdout.trim().split('\n')).toHaveLength(1); // the header only
  });
});

describe('an image of 132 layers on boxd-overlay', () => {
  it('imports and runs: containerd shortens the lowerdirs our paths allow it to', async () => {
    const deep = await buildDeepImage(image, 129);
    await ctr(['images', 'import', '--snapshotter', 'boxd-overlay', deep.archive]);

    // Absolute lowerdirs of the top layer do not fit in one page of mount options...
    const { stdout: ls } = await ctr(['snapshots', '--snapshotter', 'boxd-overlay', 'ls']);
    const rows = ls.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    const parents = new Set(rows.map((r) => r[1]));
    const top = rows.find((r) => !parents.has(r[0]))![0]!;
    const { stdout: json } = await ctr(['snapshots', '--snapshotter', 'boxd-overlay', 'view', '--mounts', 'deep-view', top]);
    const [mount] = JSON.parse(json) as { Type: string; Options: string[] }[];
    expect(mount!.Type).toBe('overlay');
    expect(mount!.Options.join(',').length).toBeGreaterThan(4096);
    // (The view may already have been collected: nothing references it.)
    await ctr(['snapshots', '--snapshotter', 'boxd-overlay', 'rm', 'deep-view']).catch(() => undefined);

    // ...yet the shim mounts them: containerd's mount code chdirs into <root>/snapshots.
    const { stdout } = await ctr([
      'run', '--rm', '--snapshotter', 'boxd-overlay', deep.ref, 'deep-run',
      'sh', '-c', 'cat /layers/1 /layers/129; ls /layers | wc -l',
    ]);
    expect(stdout.split('\n').map((s) => s.trim())).toEqual(['layer 1', 'layer 129', '129', '']);
    await ctr(['images', 'rm', '--sync', deep.ref]);
    await waitFor(async () => (await snapshotDirs('boxd-overlay')).length === 0, 30_000);
  }, 180_000);
});

/**
 * Stacks `extra` one-file layers on a built image: an OCI archive whose
 * absolute lowerdirs would not fit in one page of mount options.
 */
async function buildDeepImage(base: TestImage, extra: number): Promise<{ archive: string; ref: string }> {
  const work = join(dir, 'deep');
  const layout = join(work, 'layout');
  await mkdir(work);
  await runOk('cp', ['-a', base.layout, layout]);
  const blob = (digest: string) => join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  const put = async (data: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await writeFile(blob(digest), data);
    return { digest, size: data.length };
  };

  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8'));
  for (let i = 1; i <= extra; i++) {
    const src = join(work, `l${i}`);
    await mkdir(join(src, 'layers'), { recursive: true });
    await writeFile(join(src, 'layers', String(i)), `layer ${i}\n`);
    await runOk('tar', ['-cf', join(work, 'layer.tar'), '--owner=0', '--group=0', '-C', src, 'layers']);
    const layer = await put(await readFile(join(work, 'layer.tar')));
    manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer });
    config.rootfs.diff_ids.push(layer.digest);
  }
  manifest.config = { ...manifest.config, ...(await put(Buffer.from(JSON.stringify(config)))) };
  const ref = 'docker.io/library/bxdeep:latest';
  const top = await put(Buffer.from(JSON.stringify(manifest)));
  index.manifests = [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...top,
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': 'latest' },
    },
  ];
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
  const archive = join(work, 'deep.tar');
  await runOk('tar', ['-cf', archive, '-C', layout, 'oci-layout', 'index.json', 'blobs']);
  return { archive, ref };
}
