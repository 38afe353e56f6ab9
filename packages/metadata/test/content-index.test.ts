import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Long from 'long';
import { Code } from '@boxd/api';
import { collect, expectCode, inNs, sha, startMetadata, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startMetadata();
});
afterAll(() => h.stop());

const opts = inNs('content');

describe('ContentIndex', () => {
  it('adds, reads, updates labels by mask and deletes', async () => {
    const big = '9007199254740993';
    const { info } = await h.clients.content.Add({ digest: sha('1'), size: big, labels: { a: '1', b: '2' } }, opts);
    expect(info?.size.toString()).toBe(big);
    const got = (await h.clients.content.Info({ digest: sha('1') }, opts)).info!;
    expect(got.labels).toEqual({ a: '1', b: '2' });
    expect(got.size.toString()).toBe(big);

    const upd = (labels: Record<string, string>, paths?: string[]) =>
      h.clients.content.Update({ info: { digest: sha('1'), labels }, updateMask: paths ? { paths } : null }, opts).then((r) => r.info!.labels);
    expect(await upd({ 'containerd.io/gc.ref.content.m.0': sha('2'), b: '' }, ['labels.containerd.io/gc.ref.content.m.0', 'labels.b'])).toEqual({
      a: '1',
      'containerd.io/gc.ref.content.m.0': sha('2'),
    });
    expect(await upd({ only: 'x' })).toEqual({ only: 'x' });
    expect(await upd({ z: '1' }, ['labels'])).toEqual({ z: '1' });
    await expectCode(upd({}, ['size']), Code.INVALID_ARGUMENT, `cannot update "size" field on content info "${sha('1')}"`);

    await h.clients.content.Delete({ digest: sha('1') }, opts);
    await expectCode(h.clients.content.Info({ digest: sha('1') }, opts), Code.NOT_FOUND, `content ${sha('1')}`);
  });

  it('has upstream error codes', async () => {
    await expectCode(h.clients.content.Info({ digest: 'nope' }, opts), Code.INVALID_ARGUMENT);
    await expectCode(h.clients.content.Info({ digest: sha('404') }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.content.Delete({ digest: sha('404') }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.content.Update({ info: { digest: sha('404') } }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.content.Add({ digest: 'sha256:ABC', size: 1 }, opts), Code.INVALID_ARGUMENT);
    await h.clients.content.Add({ digest: sha('5'), size: 1 }, opts);
    await expectCode(h.clients.content.Add({ digest: sha('5'), size: 1 }, opts), Code.ALREADY_EXISTS, `content ${sha('5')}`);
    await expectCode(h.clients.content.Add({ digest: sha('6'), size: 1, labels: { k: 'v'.repeat(4096) } }, opts), Code.INVALID_ARGUMENT);
    await expectCode(h.clients.content.OpenIngest({ ref: '' }, opts), Code.INVALID_ARGUMENT, 'ref must not be empty');
    await expectCode(h.clients.content.GetIngest({ ref: 'none' }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.content.AbortIngest({ ref: 'none' }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.content.PrepareCommit({ ref: 'none', digest: sha('7') }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.content.Locate({ digest: sha('404') }), Code.NOT_FOUND);
  });

  it('lists with filters in batches of 100', async () => {
    const ns = inNs('content-list');
    for (let i = 0; i < 150; i++) await h.clients.content.Add({ digest: sha(`a${i}`), size: i + 1, labels: i % 2 ? { odd: 'yes' } : {} }, ns);
    const batches: number[] = [];
    for await (const batch of h.clients.content.List({ filters: [] }, ns)) batches.push(batch.info.length);
    expect(batches).toEqual([100, 50]);
    const digests = (filters: string[]) => collect(h.clients.content.List({ filters }, ns), (b) => b.info.map((i) => i.digest));
    expect((await digests(['labels.odd==yes'])).length).toBe(75);
    expect(await digests(['size==3'])).toEqual([sha('a2')]);
    expect(await digests([`digest==${sha('a7')}`])).toEqual([sha('a7')]);
  });

  it('tracks ingests: open, resume, list, prepare, commit through Add, abort', async () => {
    const { ingest, shared } = await h.clients.content.OpenIngest({ ref: 'tar-index.json', total: 407 }, opts);
    expect(shared).toBe(false);
    expect(ingest?.backendRef).toMatch(/^content\/\d+\/tar-index.json$/);
    expect(ingest?.expiresAt).toBeTruthy();
    const resumed = (await h.clients.content.OpenIngest({ ref: 'tar-index.json' }, opts)).ingest!;
    expect(resumed.backendRef).toBe(ingest?.backendRef);
    expect(resumed.total.toNumber()).toBe(407);
    await h.clients.content.OpenIngest({ ref: 'layer-x' }, opts);
    const refs = async (filters: string[]) => (await h.clients.content.ListIngests({ filters }, opts)).ingests.map((i) => i.ref).sort();
    expect(await refs([])).toEqual(['layer-x', 'tar-index.json']);
    expect(await refs(['ref~=^tar-'])).toEqual(['tar-index.json']);

    await h.clients.content.PrepareCommit({ ref: 'tar-index.json', digest: sha('d278'), size: 407 }, opts);
    expect((await h.clients.content.GetIngest({ ref: 'tar-index.json' }, opts)).committing).toBe(sha('d278'));
    await h.clients.content.Add({ digest: sha('d278'), size: 407, ref: 'tar-index.json', labels: { l: '1' } }, opts);
    expect(await refs([])).toEqual(['layer-x']);
    expect((await h.clients.content.Info({ digest: sha('d278') }, opts)).info?.labels).toEqual({ l: '1' });

    const aborted = await h.clients.content.AbortIngest({ ref: 'layer-x' }, opts);
    expect(aborted.backendRef).toMatch(/layer-x$/);
    expect(await refs([])).toEqual([]);
  });

  it('answers ALREADY_EXISTS when the expected blob is in the namespace, and "shared" when another namespace has it', async () => {
    await h.clients.content.Add({ digest: sha('ee'), size: 42 }, inNs('content-a'));
    await expectCode(h.clients.content.OpenIngest({ ref: 'layer-ee', expected: sha('ee') }, inNs('content-a')), Code.ALREADY_EXISTS, `content ${sha('ee')}`);
    const opened = await h.clients.content.OpenIngest({ ref: 'layer-ee', expected: sha('ee'), total: 42 }, inNs('content-b'));
    expect(opened.shared).toBe(true);
    expect(Long.fromValue(opened.sharedSize).toNumber()).toBe(42);
    const mismatch = await h.clients.content.OpenIngest({ ref: 'layer-ee2', expected: sha('ee'), total: 41 }, inNs('content-b'));
    expect(mismatch.shared).toBe(false);
    const located = await h.clients.content.Locate({ digest: sha('ee') });
    expect(located.namespaces).toEqual(['content-a']);
    await h.clients.content.Add({ digest: sha('ee'), size: 42, ref: 'layer-ee' }, inNs('content-b'));
    expect((await h.clients.content.Locate({ digest: sha('ee') })).namespaces).toEqual(['content-a', 'content-b']);
  });

  it('leaves ingests opened under a lease without expiry', async () => {
    await h.clients.leases.Create({ id: 'L' }, opts);
    const { ingest } = await h.clients.content.OpenIngest({ ref: 'leased' }, inNs('content', 'L'));
    expect(ingest?.lease).toBe('L');
    expect(ingest?.expiresAt).toBeNull();
  });
});
