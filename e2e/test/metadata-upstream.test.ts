/**
 * The metadata plugin side by side with upstream containerd 1.6: the same
 * Namespaces, Images, Containers and Leases calls get the same answers and
 * the same errors (code and message) from both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containers, errorCode, images, leases, namespaces, type CallOptions } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { cleanupTempDirs, startContainerd, tempDir, waitForSocket, type Containerd } from '@boxd/test-utils';

const BIN = fileURLToPath(new URL('../../packages/metadata/dist/bin.js', import.meta.url));

function clientsFor(address: string) {
  return {
    namespaces: createGrpcClient(namespaces.NamespacesService, address),
    images: createGrpcClient(images.ImagesService, address),
    containers: createGrpcClient(containers.ContainersService, address),
    leases: createGrpcClient(leases.LeasesService, address),
  };
}
type Clients = ReturnType<typeof clientsFor>;

let upstream: Containerd;
let plugin: ChildProcess;
let theirs: Clients;
let ours: Clients;

beforeAll(async () => {
  const dir = await tempDir();
  upstream = await startContainerd({ dir: join(dir, 'cd') });
  const address = join(dir, 'md.sock');
  plugin = spawn(process.execPath, [BIN, '--grpc-address', address, '--root', join(dir, 'md'), '--log-level', 'warn'], { stdio: 'inherit' });
  await waitForSocket(address);
  theirs = clientsFor(upstream.address);
  ours = clientsFor(address);
});
afterAll(async () => {
  for (const c of [...Object.values(theirs ?? {}), ...Object.values(ours ?? {})]) c.close();
  if (plugin && plugin.exitCode === null) {
    plugin.kill('SIGTERM');
    await once(plugin, 'exit');
  }
  await upstream?.stop();
  await cleanupTempDirs();
});

type Outcome = { ok: unknown } | { code: number; message: string };

async function outcome(p: Promise<unknown>, strip: (v: unknown) => unknown): Promise<Outcome> {
  try {
    return { ok: strip(await p) };
  } catch (err) {
    return { code: errorCode(err), message: (err as Error).message };
  }
}

/** Timestamps differ by nature and Go maps have no order; everything else must match. */
function withoutTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimes);
  if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'createdAt' && k !== 'updatedAt')
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, withoutTimes(v)]),
    );
  }
  return value;
}

/** Runs the same call on both and expects the same outcome; `codeOnly` for errors whose detail text is Go's own. */
async function same(call: (c: Clients) => Promise<unknown>, codeOnly = false): Promise<Outcome> {
  const [a, b] = [await outcome(call(theirs), withoutTimes), await outcome(call(ours), withoutTimes)];
  const what = `${call.toString().replace(/\s+/g, ' ')}\n upstream: ${JSON.stringify(a)}\n ours:     ${JSON.stringify(b)}`;
  if (codeOnly && 'code' in a && 'code' in b) expect(b.code, what).toBe(a.code);
  else expect(JSON.stringify(b), what).toBe(JSON.stringify(a));
  return a;
}

const spec = { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from('{}') };
const target = (size = 10) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'a'.repeat(64)}`, size, annotations: {} });
const ctr = (id: string, extra: object = {}) => ({ id, runtime: { name: 'io.containerd.runc.v2' }, spec, snapshotter: 'overlayfs', snapshotKey: id, ...extra });

describe('metadata plugin vs containerd 1.6', () => {
  it('namespaces', async () => {
    const ns = inNs();
    // ctr sends a namespace on every call; upstream's Namespaces service needs one to publish its events.
    const hdr = ns('default');
    await same((c) => c.namespaces.Create({ namespace: { name: 'cmp-ns', labels: { a: '1' } } }, hdr));
    await same((c) => c.namespaces.Create({ namespace: { name: 'cmp-ns' } }, hdr));
    await same((c) => c.namespaces.Create({ namespace: { name: 'Bad Name' } }, hdr));
    await same((c) => c.namespaces.Get({ name: 'cmp-ns' }, hdr));
    await same((c) => c.namespaces.Get({ name: 'cmp-never' }, hdr));
    // Upstream answers Update with an empty namespace; boxd answers the updated one. Compare the effect.
    for (const c of [theirs, ours]) await c.namespaces.Update({ namespace: { name: 'cmp-ns', labels: { b: '2' } }, updateMask: { paths: ['labels.b'] } }, hdr);
    await same((c) => c.namespaces.Get({ name: 'cmp-ns' }, hdr));
    await same((c) => c.namespaces.Update({ namespace: { name: 'cmp-ns' }, updateMask: { paths: ['name'] } }, hdr));
    await same((c) => c.namespaces.Update({ namespace: { name: 'cmp-ns' }, updateMask: { paths: ['labels'] } }, hdr));
    for (const c of [theirs, ours]) await c.namespaces.Update({ namespace: { name: 'cmp-ns', labels: { only: 'this' } } }, hdr);
    await same((c) => c.namespaces.Get({ name: 'cmp-ns' }, hdr));
    await same((c) => c.images.Create({ image: { name: 'i', target: target() } }, ns('cmp-busy')));
    await same((c) => c.containers.Create({ container: ctr('c') }, ns('cmp-busy')));
    await same((c) => c.namespaces.Delete({ name: 'cmp-busy' }, hdr));
    await same((c) => c.namespaces.Delete({ name: 'cmp-missing' }, hdr));
    await same((c) => c.namespaces.Delete({ name: 'cmp-ns' }, hdr));
    await same((c) => c.images.List({ filters: [] }));
  });

  it('images', async () => {
    const ns = inNs()('cmp-img');
    await same((c) => c.images.Create({ image: { name: 'docker.io/library/a:1', labels: { x: 'y' }, target: { ...target(), annotations: { k: 'v' } } } }, ns));
    await same((c) => c.images.Create({ image: { name: 'docker.io/library/a:1', target: target() } }, ns));
    await same((c) => c.images.Create({ image: { name: 'docker.io/library/b:1', target: { ...target(), mediaType: 'index' } } }, ns));
    await same((c) => c.images.Create({ image: { name: '', target: target() } }, ns));
    await same((c) => c.images.Create({ image: { name: 'z', target: target(0) } }, ns));
    await same((c) => c.images.Create({ image: { name: 'z', target: { ...target(), mediaType: '' } } }, ns));
    await same((c) => c.images.Create({ image: { name: 'z', target: { ...target(), digest: 'sha256:nope' } } }, ns), true);
    // The size message itself comes from @boxd/api's label check, worded differently from upstream's.
    await same((c) => c.images.Create({ image: { name: 'z', labels: { k: 'v'.repeat(5000) }, target: target() } }, ns), true);
    await same((c) => c.images.Get({ name: 'docker.io/library/a:1' }, ns));
    await same((c) => c.images.Get({ name: 'missing' }, ns));
    for (const filters of [[], ['name==docker.io/library/a:1'], ['target.mediatype==index'], ['labels.x==y'], ['annotations.k'], ['name~=b', 'labels.x']]) {
      await same((c) => c.images.List({ filters }, ns));
    }
    await same((c) => c.images.List({ filters: ['name=='] }, ns), true);
    await same((c) => c.images.Update({ image: { name: 'docker.io/library/a:1', labels: { n: '1' } }, updateMask: { paths: ['labels.n', 'labels.x'] } }, ns));
    await same((c) => c.images.Update({ image: { name: 'docker.io/library/a:1', target: { annotations: { j: '2' } } }, updateMask: { paths: ['annotations'] } }, ns));
    await same((c) => c.images.Update({ image: { name: 'docker.io/library/a:1', target: { annotations: { q: '1' } } }, updateMask: { paths: ['annotations.q', 'annotations.j'] } }, ns));
    await same((c) => c.images.Update({ image: { name: 'docker.io/library/a:1', target: target(5) } }, ns));
    await same((c) => c.images.Update({ image: { name: 'docker.io/library/a:1' }, updateMask: { paths: ['name'] } }, ns));
    await same((c) => c.images.Update({ image: { name: 'missing', target: target() } }, ns));
    await same((c) => c.images.Update({ image: { name: '' } }, ns));
    await same((c) => c.images.Delete({ name: 'docker.io/library/b:1' }, ns));
    await same((c) => c.images.Delete({ name: 'docker.io/library/b:1' }, ns));
    await same((c) => c.images.Get({ name: 'x' }));
  });

  it('containers', async () => {
    const ns = inNs()('cmp-ctr');
    await same((c) => c.containers.Create({ container: ctr('c1', { labels: { a: '1' }, image: 'img' }) }, ns));
    await same((c) => c.containers.Create({ container: ctr('c1') }, ns));
    await same((c) => c.containers.Create({ container: ctr('bad id') }, ns));
    await same((c) => c.containers.Create({ container: ctr('c2', { runtime: { name: '' } }) }, ns));
    await same((c) => c.containers.Create({ container: ctr('c2', { spec: null }) }, ns));
    await same((c) => c.containers.Create({ container: ctr('c2', { snapshotter: '' }) }, ns));
    await same((c) => c.containers.Get({ id: 'c1' }, ns));
    await same((c) => c.containers.Get({ id: 'missing' }, ns));
    await same((c) => c.containers.Get({ id: 'missing' }, inNs()('cmp-empty')));
    for (const filters of [[], ['id==c1'], ['image==img'], ['labels.a==1'], ['runtime.name==io.containerd.runc.v2']]) {
      await same((c) => c.containers.List({ filters }, ns));
    }
    await same((c) => c.containers.Update({ container: ctr('c1', { labels: { b: '2' } }), updateMask: { paths: ['labels.b'] } }, ns));
    await same((c) => c.containers.Update({ container: ctr('c1', { snapshotter: 'native' }) }, ns));
    await same((c) => c.containers.Update({ container: ctr('c1', { runtime: { name: 'other' } }) }, ns));
    await same((c) => c.containers.Update({ container: ctr('c1', { image: 'new' }), updateMask: { paths: ['image', 'snapshotkey'] } }, ns));
    await same((c) => c.containers.Update({ container: ctr('c1'), updateMask: { paths: ['runtime'] } }, ns));
    await same((c) => c.containers.Update({ container: ctr('c1', { extensions: { e: { type_url: 'x', value: Buffer.from('1') } } }), updateMask: { paths: ['extensions.e'] } }, ns));
    await same(async (c) => {
      const out = [];
      for await (const m of c.containers.ListStream({ filters: [] }, ns)) out.push(m);
      return out;
    });
    await same((c) => c.containers.Update({ container: ctr('missing') }, ns));
    await same((c) => c.containers.Update({ container: ctr('missing') }, inNs()('cmp-empty2')));
    await same((c) => c.containers.Update({ container: { id: '' } }, ns));
    await same((c) => c.containers.Delete({ id: 'missing' }, ns));
    await same((c) => c.containers.Delete({ id: 'missing' }, inNs()('cmp-empty3')));
    await same((c) => c.containers.Delete({ id: 'c1' }, ns));
  });

  it('leases', async () => {
    const ns = inNs()('cmp-lease');
    await same((c) => c.leases.Create({ id: 'l1', labels: { 'containerd.io/gc.expire': '2099-01-01T00:00:00Z' } }, ns));
    await same((c) => c.leases.Create({ id: 'l1' }, ns));
    const generated = await Promise.all([theirs.leases.Create({ id: '' }, ns), ours.leases.Create({ id: '' }, ns)]);
    for (const { lease } of generated) expect(lease?.id).toMatch(/^\d+-[A-Za-z0-9_-]{4}$/);
    for (const [i, c] of [theirs, ours].entries()) await c.leases.Delete({ id: generated[i]!.lease!.id }, ns);
    for (const filters of [[], ['id==l1'], ['labels."containerd.io/gc.expire"']]) await same((c) => c.leases.List({ filters }, ns));
    await same((c) => c.leases.AddResource({ id: 'l1', resource: { id: `sha256:${'b'.repeat(64)}`, type: 'content' } }, ns));
    await same((c) => c.leases.AddResource({ id: 'l1', resource: { id: 'k', type: 'snapshots/overlayfs' } }, ns));
    await same((c) => c.leases.AddResource({ id: 'l1', resource: { id: 'r', type: 'ingests' } }, ns));
    await same((c) => c.leases.ListResources({ id: 'l1' }, ns));
    await same((c) => c.leases.AddResource({ id: 'l1', resource: { id: 'x', type: 'containers' } }, ns));
    await same((c) => c.leases.AddResource({ id: 'l1', resource: { id: 'x', type: 'snapshots' } }, ns));
    await same((c) => c.leases.AddResource({ id: 'l1', resource: { id: 'nope', type: 'content' } }, ns), true);
    await same((c) => c.leases.AddResource({ id: 'missing', resource: { id: 'r', type: 'ingests' } }, ns));
    await same((c) => c.leases.DeleteResource({ id: 'l1', resource: { id: 'r', type: 'ingests' } }, ns));
    await same((c) => c.leases.ListResources({ id: 'l1' }, ns));
    await same((c) => c.leases.ListResources({ id: 'missing' }, ns));
    await same((c) => c.leases.Delete({ id: 'missing' }, ns));
    await same((c) => c.leases.Delete({ id: 'l1' }, ns));
  });
});

function inNs() {
  return (namespace: string): CallOptions => ({ namespace });
}
