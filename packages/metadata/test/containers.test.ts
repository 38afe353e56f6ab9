import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { expectCode, inNs, startMetadata, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startMetadata();
});
afterAll(() => h.stop());

const opts = inNs('ctr');
const spec = (json: object) => ({ type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(json)) });
const base = (id: string) => ({
  id,
  labels: { 'io.containerd.image.config.stop-signal': 'SIGTERM' },
  image: 'docker.io/library/bb:latest',
  runtime: { name: 'io.containerd.runc.v2', options: { type_url: 'containerd.runc.v1.Options', value: new Uint8Array() } },
  spec: spec({ ociVersion: '1.0.2' }),
  snapshotter: 'overlayfs',
  snapshotKey: id,
  extensions: { ext: { type_url: 'x', value: Buffer.from('1') } },
});

describe('Containers', () => {
  it('creates and gets a container record like ctr makes', async () => {
    const { container } = await h.clients.containers.Create({ container: base('c1') }, opts);
    expect(container?.createdAt).toBeTruthy();
    const got = (await h.clients.containers.Get({ id: 'c1' }, opts)).container!;
    expect(got.runtime?.name).toBe('io.containerd.runc.v2');
    expect(got.runtime?.options?.type_url).toBe('containerd.runc.v1.Options');
    expect(JSON.parse(Buffer.from(got.spec!.value).toString())).toEqual({ ociVersion: '1.0.2' });
    expect(got.snapshotter).toBe('overlayfs');
    expect(got.snapshotKey).toBe('c1');
    expect(Buffer.from(got.extensions.ext!.value).toString()).toBe('1');
    expect(got.labels).toEqual(base('c1').labels);
  });

  it('validates ids, runtime, spec and snapshotter', async () => {
    await expectCode(h.clients.containers.Create({ container: base('c1') }, opts), Code.ALREADY_EXISTS, 'container "c1"');
    await expectCode(h.clients.containers.Create({ container: base('bad id') }, opts), Code.INVALID_ARGUMENT, /identifier "bad id" must match/);
    await expectCode(h.clients.containers.Create({ container: { ...base('c2'), runtime: { name: '' } } }, opts), Code.INVALID_ARGUMENT, /Runtime.Name must be set/);
    await expectCode(h.clients.containers.Create({ container: { ...base('c2'), spec: null } }, opts), Code.INVALID_ARGUMENT, /Spec must be set/);
    await expectCode(h.clients.containers.Create({ container: { ...base('c2'), snapshotter: '' } }, opts), Code.INVALID_ARGUMENT, /Snapshotter must be set/);
    await expectCode(h.clients.containers.Create({ container: { ...base('c2'), extensions: { '': { type_url: 'x' } } } }, opts), Code.INVALID_ARGUMENT, /zero-length/);
    await expectCode(h.clients.containers.Get({ id: 'nope' }, opts), Code.NOT_FOUND, 'container "nope"');
    await expectCode(h.clients.containers.Delete({ id: 'nope' }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.containers.Update({ container: { id: '' } }, opts), Code.INVALID_ARGUMENT, 'Container.ID required');
    await expectCode(h.clients.containers.Update({ container: base('nope') }, opts), Code.NOT_FOUND);
  });

  it('updates by mask; an empty mask keeps snapshotter and runtime immutable', async () => {
    await h.clients.containers.Create({ container: base('u1') }, opts);
    const upd = (container: object, paths?: string[]) =>
      h.clients.containers.Update({ container: { ...base('u1'), ...container }, updateMask: paths ? { paths } : null }, opts).then((r) => r.container!);
    let c = await upd({ labels: { a: '1' }, image: 'other' }, ['labels.a', 'image']);
    expect(c.labels).toEqual({ ...base('u1').labels, a: '1' });
    expect(c.image).toBe('other');
    c = await upd({ snapshotKey: 'k2', extensions: { e2: { type_url: 'y', value: Buffer.from('2') } } }, ['snapshotkey', 'extensions.e2', 'extensions.ext']);
    expect(c.snapshotKey).toBe('k2');
    expect(Object.keys(c.extensions)).toEqual(['e2']);
    c = await upd({ labels: { only: 'x' }, spec: spec({ v: 2 }) });
    expect(c.labels).toEqual({ only: 'x' });
    expect(c.snapshotKey).toBe('u1');
    expect(JSON.parse(Buffer.from(c.spec!.value).toString())).toEqual({ v: 2 });
    await expectCode(upd({ snapshotter: 'native' }), Code.INVALID_ARGUMENT, 'container.Snapshotter field is immutable');
    await expectCode(upd({ runtime: { name: 'other' } }), Code.INVALID_ARGUMENT, 'container.Runtime.Name field is immutable');
    // With a mask the immutable fields are simply not copied.
    c = await upd({ snapshotter: 'native', image: 'z' }, ['image']);
    expect(c.snapshotter).toBe('overlayfs');
    await expectCode(upd({}, ['runtime']), Code.INVALID_ARGUMENT, /cannot update "runtime" field/);
    await expectCode(upd({ spec: null }, ['spec']), Code.INVALID_ARGUMENT, /Spec must be set/);
  });

  it('lists and list-streams with filters, and deletes', async () => {
    const ns = inNs('ctr-list');
    for (const id of ['a1', 'a2', 'b1']) {
      await h.clients.containers.Create({ container: { ...base(id), image: id.startsWith('a') ? 'img-a' : 'img-b', labels: { group: id[0]! } } }, ns);
    }
    const ids = async (filters: string[]) => (await h.clients.containers.List({ filters }, ns)).containers.map((c) => c.id).sort();
    expect(await ids([])).toEqual(['a1', 'a2', 'b1']);
    expect(await ids(['image==img-a'])).toEqual(['a1', 'a2']);
    expect(await ids(['labels.group==b'])).toEqual(['b1']);
    expect(await ids(['id~=^a', 'id==b1'])).toEqual(['a1', 'a2', 'b1']);
    expect(await ids(['runtime.name==io.containerd.runc.v2,id==a2'])).toEqual(['a2']);
    const streamed: string[] = [];
    for await (const m of h.clients.containers.ListStream({ filters: ['image==img-a'] }, ns)) streamed.push(m.container!.id);
    expect(streamed.sort()).toEqual(['a1', 'a2']);
    await h.clients.containers.Delete({ id: 'a1' }, ns);
    expect(await ids([])).toEqual(['a2', 'b1']);
  });
});
