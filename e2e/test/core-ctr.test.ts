/**
 * Upstream `ctr` (Debian's containerd 1.6) unchanged against `boxd` with its
 * default config: every plugin a supervised child process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { buildTestImage, removeDir, run, runOk, startBoxd, startContainerd, tempDir, waitFor, type Boxd, type TestImage } from '@boxd/test-utils';

let dir: string;
let boxd: Boxd;
let image: TestImage;
let layered: TestImage;

const ok = async (args: string[], input?: string) => {
  const res = await boxd.ctr(args, { input });
  if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return res.stdout;
};

beforeAll(async () => {
  dir = await tempDir('bx-core-');
  image = await buildTestImage({ dir: join(dir, 'img') });
  layered = await buildTestImage({
    dir: join(dir, 'img'),
    name: 'layered',
    layers: [{ files: { 'etc/hello': 'hello\n', 'opt/a/x': 'x' } }, { files: { 'opt/a/y': 'y' }, remove: ['etc/hello'] }],
  });
  boxd = await startBoxd({ dir: join(dir, 'boxd') });
}, 120_000);

afterAll(async () => {
  await boxd?.stop();
  await removeDir(dir);
}, 60_000);

describe('ctr against boxd', () => {
  it('version and plugins', async () => {
    expect(await ok(['version'])).toMatch(/Server:\s+Version:\s+\S+/);
    const plugins = await ok(['plugins', 'ls']);
    for (const p of ['io.containerd.content.v1\\s+content', 'io.containerd.snapshotter.v1\\s+overlayfs', 'io.containerd.snapshotter.v1\\s+native', 'io.containerd.differ.v1\\s+diff', 'io.containerd.grpc.v1\\s+images']) {
      expect(plugins).toMatch(new RegExp(`${p}\\s.*ok`));
    }
  });

  it('namespaces create, label, ls, rm', async () => {
    await ok(['namespaces', 'create', 'e2e-ns', 'team=a']);
    await ok(['namespaces', 'label', 'e2e-ns', 'tier=gold']);
    const ls = await ok(['namespaces', 'ls']);
    expect(ls).toMatch(/e2e-ns\s+.*team=a/);
    expect(ls).toMatch(/tier=gold/);
    await ok(['namespaces', 'rm', 'e2e-ns']);
    expect(await ok(['namespaces', 'ls', '-q'])).not.toMatch(/e2e-ns/);
  });

  it('a namespace with an image cannot be removed', async () => {
    await ok(['-n', 'busy', 'images', 'import', '--no-unpack', image.archive]);
    const res = await boxd.ctr(['namespaces', 'rm', 'busy']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/must be empty|failed precondition/);
    await ok(['-n', 'busy', 'images', 'rm', image.ref]);
  });

  it('images import unpacks into committed overlay snapshots', async () => {
    const out = await ok(['images', 'import', layered.archive]);
    expect(out).toMatch(/unpacking .*done/);
    expect(await ok(['images', 'ls', '-q'])).toContain(layered.ref);
    expect(await ok(['images', 'check'])).toMatch(new RegExp(`${layered.ref.replace(/[.]/g, '\\.')}\\s.*complete`));
    const snaps = await ok(['snapshots', 'ls']);
    const committed = snaps.split('\n').filter((l) => /Committed/.test(l));
    expect(committed.length).toBe(3);
    const tree = await ok(['snapshots', 'tree']);
    expect(tree.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(3);
    const top = committed[0].split(/\s+/)[0];
    expect(await ok(['snapshots', 'info', top])).toMatch(/"Kind": "Committed"/);
    expect(await ok(['snapshots', 'usage', top])).toMatch(/\d/);
  });

  it('import of an archive made by skopeo', async () => {
    const archive = join(dir, 'skopeo.tar');
    await runOk('skopeo', ['copy', `oci:${image.layout}:${image.tag}`, `oci-archive:${archive}:skopeo/bb:v1`]);
    await ok(['images', 'import', '--base-name', 'skopeo/bb', archive]);
    expect(await ok(['images', 'ls', '-q'])).toMatch(/skopeo\/bb:v1/);
  });

  it('images tag, rm; content ls and get', async () => {
    await ok(['images', 'import', image.archive]);
    await ok(['images', 'tag', image.ref, 'docker.io/library/bb:copy']);
    expect(await ok(['images', 'ls', '-q'])).toContain('docker.io/library/bb:copy');
    await ok(['images', 'rm', 'docker.io/library/bb:copy']);
    expect(await ok(['images', 'ls', '-q'])).not.toContain('docker.io/library/bb:copy');
    const content = await ok(['content', 'ls', '-q']);
    expect(content).toContain(image.digest);
    const got = await run('ctr', ['-a', boxd.address, 'content', 'get', image.digest]);
    expect(`sha256:${createHash('sha256').update(got.stdoutBytes).digest('hex')}`).toBe(image.digest);
  });

  it('leases create, ls, rm', async () => {
    await ok(['leases', 'create', '--id', 'e2e-lease', '--expires', '1h']);
    expect(await ok(['leases', 'ls'])).toMatch(/e2e-lease/);
    await ok(['leases', 'rm', 'e2e-lease']);
    expect(await ok(['leases', 'ls'])).not.toMatch(/e2e-lease/);
  });

  it('ctr events prints events while another command runs', async () => {
    const events = spawn('ctr', ['-a', boxd.address, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    events.stdout.on('data', (d) => (out += d));
    await new Promise((r) => setTimeout(r, 500));
    await ok(['namespaces', 'create', 'evt-ns']);
    await ok(['-n', 'evt-ns', 'images', 'import', '--no-unpack', image.archive]);
    await ok(['-n', 'evt-ns', 'images', 'rm', image.ref]);
    // The image's blobs leave the namespace with the next GC, which runs just after a deletion.
    await waitFor(async () => (await boxd.ctr(['namespaces', 'rm', 'evt-ns'])).code === 0, 10_000);
    const deadline = Date.now() + 5000;
    while (!/\/namespaces\/delete/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    events.kill();
    expect(out).toMatch(/\/namespaces\/create/);
    expect(out).toMatch(/\/images\/create/);
    expect(out).toMatch(/\/images\/delete/);
    expect(out).toMatch(/\/namespaces\/delete/);
  });

  /** The digests an image's target reaches in our store: itself, manifests, configs, layers. */
  async function reachableBlobs(digest: string): Promise<string[]> {
    const out = [digest];
    const doc = JSON.parse(await ok(['content', 'get', digest])) as { manifests?: Array<{ digest: string }>; config?: { digest: string }; layers?: Array<{ digest: string }> };
    for (const m of doc.manifests ?? []) out.push(...(await reachableBlobs(m.digest)));
    if (doc.config) out.push(doc.config.digest);
    for (const l of doc.layers ?? []) out.push(l.digest);
    return out;
  }

  it('images export, then import into upstream containerd, gives the same digests', async () => {
    const exported = join(dir, 'export.tar');
    await ok(['images', 'export', exported, layered.ref]);
    const upstream = await startContainerd({ dir: join(dir, 'upstream') });
    try {
      const res = await upstream.ctr(['images', 'import', '--no-unpack', exported]);
      expect(res.code, res.stderr).toBe(0);
      const ours = (await ok(['images', 'ls'])).split('\n').find((l) => l.startsWith(layered.ref));
      const theirs = (await upstream.ctr(['images', 'ls'])).stdout.split('\n').find((l) => l.startsWith(layered.ref));
      expect(theirs?.split(/\s+/)[2]).toBe(ours?.split(/\s+/)[2]);
      // Every blob the image reaches, by the same digest on both sides. (Not every blob
      // listed: an import also stores its archive's index.json, unreferenced, which either
      // side's garbage collection may already have taken.)
      const theirContent = (await upstream.ctr(['content', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
      const reached = await reachableBlobs(theirs!.split(/\s+/)[2]!);
      expect(reached.length).toBeGreaterThanOrEqual(3);
      for (const d of reached) expect(theirContent).toContain(d);
    } finally {
      await upstream.stop();
    }
  });

  it('keeps sockets owner-only', async () => {
    const st = await run('stat', ['-c', '%a', boxd.address]);
    expect(st.stdout.trim()).toBe('600');
    const plugins = await readdir(join(boxd.state, 'plugins'));
    expect(plugins.filter((f) => f.endsWith('.sock')).length).toBeGreaterThanOrEqual(6);
  });
});
