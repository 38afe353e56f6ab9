import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildTestImage,
  cleanupTempDirs,
  findProcesses,
  mountsBelow,
  pushWithSkopeo,
  run,
  startContainerd,
  startRegistry,
  tempDir,
  type Containerd,
  type Registry,
  type TestImage,
} from '../src/index.js';

let dir: string;
let image: TestImage;
let containerd: Containerd;
let registry: Registry | undefined;

beforeAll(async () => {
  dir = await tempDir();
  image = await buildTestImage({
    dir,
    layers: [{ files: { '/etc/motd': 'layer two\n' }, remove: ['/etc/hostname'] }],
  });
  containerd = await startContainerd({ dir: join(dir, 'cd') });
});

afterAll(async () => {
  await containerd?.stop();
  await registry?.stop();
  await cleanupTempDirs();
});

describe('buildTestImage', () => {
  it('writes an OCI layout named for ctr, with the busybox config and two layers', async () => {
    expect(image.ref).toBe('docker.io/library/bb:latest');
    const index = JSON.parse(await readFile(join(image.layout, 'index.json'), 'utf8'));
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0].annotations).toMatchObject({
      'io.containerd.image.name': image.ref,
      'org.opencontainers.image.ref.name': 'latest',
    });
    const blob = (d: string) => readFile(join(image.layout, 'blobs', ...d.split(':')), 'utf8').then(JSON.parse);
    const manifest = await blob(index.manifests[0].digest);
    expect(manifest.layers).toHaveLength(2);
    const config = await blob(manifest.config.digest);
    expect(config.config.Cmd).toEqual(['sh']);
    expect(config.config.Env.some((e: string) => e.startsWith('PATH=') && e.includes('/bin'))).toBe(true);
    expect(config.os).toBe('linux');
  });

  it('returns the cached build for the same spec and a new one for another', async () => {
    expect(await buildTestImage({ dir, layers: [{ files: { '/etc/motd': 'layer two\n' }, remove: ['/etc/hostname'] }] })).toBe(image);
    const other = await buildTestImage({ dir, tag: 'v2' });
    expect(other.archive).not.toBe(image.archive);
    expect(other.ref).toBe('docker.io/library/bb:v2');
  });
});

describe('startContainerd + ctr', () => {
  it('imports the archive, lists it and runs busybox from it (layers and whiteout applied)', async () => {
    const imported = await containerd.ctr(['images', 'import', image.archive]);
    expect(imported.code, imported.stderr).toBe(0);
    const ls = await containerd.ctr(['images', 'ls', '-q']);
    expect(ls.stdout.split('\n')).toContain(image.ref);

    const out = await containerd.ctr(['run', '--rm', image.ref, 'h1', 'sh', '-c', 'echo hello; cat /etc/motd; ls /etc']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain('hello\nlayer two\n');
    expect(out.stdout).toContain('passwd');
    expect(out.stdout).not.toContain('hostname');
  });

  it('stop() removes running containers, shims and mounts it started', async () => {
    const cd = await startContainerd({ dir: join(dir, 'cd2') });
    try {
      await cd.ctr(['images', 'import', image.archive]);
      const started = await cd.ctr(['run', '-d', image.ref, 'sleeper', 'sleep', '300']);
      expect(started.code, started.stderr).toBe(0);
      expect(await findProcesses((argv) => argv.includes(cd.address))).not.toHaveLength(0);
      expect(await mountsBelow(join(dir, 'cd2'))).not.toHaveLength(0);
    } finally {
      await cd.stop();
    }
    expect(await findProcesses((argv) => argv.includes(cd.address))).toHaveLength(0);
    expect(await mountsBelow(join(dir, 'cd2'))).toHaveLength(0);
    const state = await run('runc', ['--root', '/run/containerd/runc/default', 'state', 'sleeper']);
    expect(state.code).not.toBe(0);
  });

  it('writes proxy plugins and disabled built-ins into the config', async () => {
    const cd = await startContainerd({
      dir: join(dir, 'cd3'),
      proxyPlugins: { mysnap: { type: 'snapshot', address: join(dir, 'mysnap.sock') } },
      disableBuiltins: ['io.containerd.snapshotter.v1.native'],
    });
    try {
      const plugins = (await cd.ctr(['plugins', 'ls'])).stdout.split('\n').map((l) => l.split(/\s+/));
      expect(plugins.some(([type, id]) => type === 'io.containerd.snapshotter.v1' && id === 'mysnap')).toBe(true);
      expect(plugins.some(([, id]) => id === 'native')).toBe(false);
      expect(plugins.some(([, id]) => id === 'overlayfs')).toBe(true);
    } finally {
      await cd.stop();
    }
  });

  it('refuses a diff proxy plugin, which containerd 1.6 would silently ignore', async () => {
    const started = startContainerd({ dir: join(dir, 'cd5'), proxyPlugins: { d: { type: 'diff', address: '/tmp/x.sock' } } });
    await expect(started).rejects.toThrow(/cannot load diff proxy plugins/);
  });

  it('fails fast with containerd\'s own log when it cannot start', async () => {
    const started = startContainerd({ dir: join(dir, 'cd4'), extraToml: '[[[not toml' });
    await expect(started).rejects.toThrow(/containerd did not start: containerd exited[\s\S]*toml/i);
  });

  it('reports a failing ctr call with its exit code and stderr', async () => {
    const r = await containerd.ctr(['images', 'pull', '--plain-http', '127.0.0.1:1/nope:latest'], { timeoutMs: 20_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toBe('');
  });
});

describe('startRegistry + skopeo', () => {
  it('pushes the archive with skopeo and ctr pulls it back over plain HTTP', async () => {
    registry = await startRegistry(dir);
    await pushWithSkopeo(image.archive, `${registry.url}/test/bb:pushed`);
    const pulled = await containerd.ctr(['images', 'pull', '--plain-http', `${registry.url}/test/bb:pushed`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    const ls = await containerd.ctr(['images', 'ls']);
    const line = ls.stdout.split('\n').find((l) => l.startsWith(`${registry!.url}/test/bb:pushed`));
    expect(line).toBeDefined();
    const run = await containerd.ctr(['run', '--rm', `${registry.url}/test/bb:pushed`, 'p1', 'cat', '/etc/motd']);
    expect(run.stdout).toBe('layer two\n');
  });

  it('pushes an OCI layout directory too', async () => {
    const port = registry!.port;
    await pushWithSkopeo(image.layout, `${port}/test/fromlayout:1`);
    const res = await fetch(`http://${registry!.url}/v2/test/fromlayout/tags/list`);
    expect(await res.json()).toEqual({ name: 'test/fromlayout', tags: ['1'] });
  });
});
