import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { expectCode, inNs, sha, startMetadata, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startMetadata();
});
afterAll(() => h.stop());

const opts = inNs('leases');

describe('Leases', () => {
  it('creates, lists with filters and deletes', async () => {
    const { lease } = await h.clients.leases.Create({ id: '48115151-W4jf', labels: { 'containerd.io/gc.expire': '2099-01-01T00:00:00Z' } }, opts);
    expect(lease?.id).toBe('48115151-W4jf');
    expect(lease?.createdAt).toBeTruthy();
    await h.clients.leases.Create({ id: 'other', labels: { team: 'x' } }, opts);
    const ids = async (filters: string[]) => (await h.clients.leases.List({ filters }, opts)).leases.map((l) => l.id).sort();
    expect(await ids([])).toEqual(['48115151-W4jf', 'other']);
    expect(await ids(['id==other'])).toEqual(['other']);
    expect(await ids(['labels.team==x'])).toEqual(['other']);
    expect(await ids(['labels."containerd.io/gc.expire"'])).toEqual(['48115151-W4jf']);
    await h.clients.leases.Delete({ id: 'other' }, opts);
    expect(await ids([])).toEqual(['48115151-W4jf']);
  });

  it('has upstream error codes', async () => {
    expect((await h.clients.leases.Create({ id: '' }, opts)).lease?.id).toMatch(/^\d+-[A-Za-z0-9_-]{4}$/);
    await h.clients.leases.Create({ id: 'dup' }, opts);
    await expectCode(h.clients.leases.Create({ id: 'dup' }, opts), Code.ALREADY_EXISTS, 'lease "dup"');
    await expectCode(h.clients.leases.Delete({ id: 'missing' }, opts), Code.NOT_FOUND, 'lease "missing"');
    await expectCode(h.clients.leases.ListResources({ id: 'missing' }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.leases.AddResource({ id: 'missing', resource: { id: sha('1'), type: 'content' } }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.leases.AddResource({ id: 'dup', resource: { id: 'x', type: 'content' } }, opts), Code.INVALID_ARGUMENT, /invalid content resource id/);
    await expectCode(h.clients.leases.AddResource({ id: 'dup', resource: { id: 'x', type: 'content/x' } }, opts), Code.INVALID_ARGUMENT);
    await expectCode(h.clients.leases.AddResource({ id: 'dup', resource: { id: 'x', type: 'snapshots' } }, opts), Code.INVALID_ARGUMENT);
    await expectCode(h.clients.leases.AddResource({ id: 'dup', resource: { id: 'x', type: 'containers' } }, opts), Code.UNIMPLEMENTED);
    await expectCode(h.clients.leases.Create({ id: 'big', labels: { k: 'v'.repeat(4097) } }, opts), Code.INVALID_ARGUMENT);
  });

  it('adds, lists and deletes resources', async () => {
    await h.clients.leases.Create({ id: 'res' }, opts);
    const add = (id: string, type: string) => h.clients.leases.AddResource({ id: 'res', resource: { id, type } }, opts);
    await add(sha('a'), 'content');
    await add('tar-index.json', 'ingests');
    await add('sha256:chain', 'snapshots/overlayfs');
    const list = async () => (await h.clients.leases.ListResources({ id: 'res' }, opts)).resources.map((r) => `${r.type} ${r.id}`).sort();
    expect(await list()).toEqual([`content ${sha('a')}`, 'ingests tar-index.json', 'snapshots/overlayfs sha256:chain']);
    await h.clients.leases.DeleteResource({ id: 'res', resource: { id: 'tar-index.json', type: 'ingests' } }, opts);
    expect(await list()).toEqual([`content ${sha('a')}`, 'snapshots/overlayfs sha256:chain']);
  });

  it('attaches what is created under the containerd-lease header', async () => {
    await h.clients.leases.Create({ id: 'hdr' }, opts);
    const leased = inNs('leases', 'hdr');
    await h.clients.content.Add({ digest: sha('b'), size: 1 }, leased);
    await h.clients.content.OpenIngest({ ref: 'layer-1' }, leased);
    await h.clients.snapshots.Prepare({ snapshotter: 'native', key: 'k1' }, leased);
    const resources = (await h.clients.leases.ListResources({ id: 'hdr' }, opts)).resources.map((r) => `${r.type} ${r.id}`).sort();
    expect(resources).toEqual([`content ${sha('b')}`, 'ingests layer-1', 'snapshots/native k1']);
    // A lease header naming no lease fails the write, and nothing is recorded.
    await expectCode(h.clients.content.Add({ digest: sha('c'), size: 1 }, inNs('leases', 'ghost')), Code.NOT_FOUND, 'lease does not exist');
    await expectCode(h.clients.content.Info({ digest: sha('c') }, opts), Code.NOT_FOUND);
  });

  it('protects its resources until deleted; Delete with sync collects before answering', async () => {
    await h.clients.leases.Create({ id: 'guard' }, opts);
    await h.clients.content.Add({ digest: sha('d'), size: 1 }, inNs('leases', 'guard'));
    await h.clients.gc.Collect({});
    expect((await h.clients.content.Info({ digest: sha('d') }, opts)).info?.digest).toBe(sha('d'));
    await h.clients.leases.Delete({ id: 'guard', sync: true }, opts);
    await expectCode(h.clients.content.Info({ digest: sha('d') }, opts), Code.NOT_FOUND);
  });
});
