import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { collect, expectCode, inNs, startMetadata, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startMetadata();
});
afterAll(() => h.stop());

const opts = inNs('snap');
const sn = 'overlayfs';
const KIND = { VIEW: 1, ACTIVE: 2, COMMITTED: 3 };

describe('SnapshotIndex', () => {
  it('maps client keys to <ns>/<seq>/<key> and passes only snapshot labels down', async () => {
    const prep = await h.clients.snapshots.Prepare(
      { snapshotter: sn, key: 'extract-1 sha256:l1', labels: { 'containerd.io/snapshot/overlay.upperdir': 'x', 'containerd.io/snapshot.ref': 'sha256:l1', other: 'y' } },
      opts,
    );
    expect(prep.key).toMatch(/^snap\/\d+\/extract-1 sha256:l1$/);
    expect(prep.parent).toBe('');
    expect(prep.labels).toEqual({ 'containerd.io/snapshot/overlay.upperdir': 'x', 'containerd.io/snapshot.ref': 'sha256:l1' });

    const commit = await h.clients.snapshots.Commit({ snapshotter: sn, name: 'sha256:l1', key: 'extract-1 sha256:l1', labels: { keep: 'me' } }, opts);
    expect(commit.key).toBe(prep.key);
    expect(commit.name).toMatch(/^snap\/\d+\/sha256:l1$/);
    expect(commit.labels).toEqual({});
    await expectCode(h.clients.snapshots.Stat({ snapshotter: sn, key: 'extract-1 sha256:l1' }, opts), Code.NOT_FOUND);
    const l1 = (await h.clients.snapshots.Stat({ snapshotter: sn, key: 'sha256:l1' }, opts)).info!;
    expect(l1).toMatchObject({ name: 'sha256:l1', parent: '', kind: KIND.COMMITTED, labels: { keep: 'me' } });

    const child = await h.clients.snapshots.Prepare({ snapshotter: sn, key: 'c1', parent: 'sha256:l1' }, opts);
    expect(child.parent).toBe(commit.name);
    const resolved = await h.clients.snapshots.Resolve({ snapshotter: sn, key: 'c1' }, opts);
    expect(resolved).toMatchObject({ snapshotter: sn, key: child.key, parent: commit.name });
    const view = await h.clients.snapshots.View({ snapshotter: sn, key: 'v1', parent: 'sha256:l1' }, opts);
    expect((await h.clients.snapshots.Stat({ snapshotter: sn, key: 'v1' }, opts)).info?.kind).toBe(KIND.VIEW);
    expect(view.parent).toBe(commit.name);
  });

  it('has upstream error codes', async () => {
    const s = h.clients.snapshots;
    await s.Prepare({ snapshotter: sn, key: 'e1' }, opts);
    await expectCode(s.Prepare({ snapshotter: sn, key: 'e1' }, opts), Code.ALREADY_EXISTS, 'snapshot "e1"');
    await expectCode(s.Prepare({ snapshotter: sn, key: 'e2', parent: 'missing' }, opts), Code.NOT_FOUND, 'parent snapshot missing does not exist');
    await expectCode(s.Prepare({ snapshotter: sn, key: 'e2', parent: 'e1' }, opts), Code.INVALID_ARGUMENT, /not committed/);
    await expectCode(s.Prepare({ snapshotter: '', key: 'e2' }, opts), Code.INVALID_ARGUMENT, 'snapshotter argument missing');
    await expectCode(s.Prepare({ snapshotter: sn, key: '' }, opts), Code.INVALID_ARGUMENT);
    await expectCode(s.Stat({ snapshotter: sn, key: 'nope' }, opts), Code.NOT_FOUND, 'snapshot nope does not exist');
    await expectCode(s.Resolve({ snapshotter: sn, key: 'nope' }, opts), Code.NOT_FOUND);
    await expectCode(s.Remove({ snapshotter: sn, key: 'nope' }, opts), Code.NOT_FOUND);
    await expectCode(s.Commit({ snapshotter: sn, name: 'x', key: 'nope' }, opts), Code.NOT_FOUND);
    await s.View({ snapshotter: sn, key: 'ev' }, opts);
    await expectCode(s.Commit({ snapshotter: sn, name: 'x', key: 'ev' }, opts), Code.FAILED_PRECONDITION, 'snapshot "ev" is not active');
    await s.Prepare({ snapshotter: sn, key: 'e3' }, opts);
    await s.Commit({ snapshotter: sn, name: 'base', key: 'e3' }, opts);
    await s.Prepare({ snapshotter: sn, key: 'e4' }, opts);
    await expectCode(s.Commit({ snapshotter: sn, name: 'base', key: 'e4' }, opts), Code.ALREADY_EXISTS, 'snapshot "base"');
    await s.Prepare({ snapshotter: sn, key: 'child', parent: 'base' }, opts);
    await expectCode(s.Remove({ snapshotter: sn, key: 'base' }, opts), Code.FAILED_PRECONDITION, 'cannot remove snapshot with child');
    await expectCode(s.Update({ snapshotter: sn, info: { name: 'base' }, updateMask: { paths: ['parent'] } }, opts), Code.INVALID_ARGUMENT, /cannot update "parent" field on snapshot "base"/);
    await expectCode(s.Update({ snapshotter: sn, info: { name: 'nope' } }, opts), Code.NOT_FOUND);
    // Keys are per snapshotter and per namespace.
    await s.Prepare({ snapshotter: 'native', key: 'e1' }, opts);
    await s.Prepare({ snapshotter: sn, key: 'e1' }, inNs('snap-other'));
  });

  it('records a backend key made with a sequence number it reserved, once', async () => {
    const s = h.clients.snapshots;
    const first = await s.Prepare({ snapshotter: sn, key: 'resv-0', reserve: 3 }, opts);
    expect(first.reserved).toHaveLength(3);
    expect(first.reservationTtlMs).toBe(3_600_000);
    const [a, b, c] = first.reserved.map(Number);
    // Taken from the snapshotter's own sequence, after the key of the create that asked.
    expect(Number(first.key.split('/')[1])).toBeLessThan(a!);
    expect([b! - a!, c! - b!]).toEqual([1, 1]);

    const made = await s.Prepare({ snapshotter: sn, key: 'resv-1', parent: '', backendKey: `snap/${a}/resv-1` }, opts);
    expect(made).toMatchObject({ key: `snap/${a}/resv-1`, reserved: [] });
    expect((await s.Resolve({ snapshotter: sn, key: 'resv-1' }, opts)).key).toBe(`snap/${a}/resv-1`);
    await expectCode(s.Prepare({ snapshotter: sn, key: 'resv-2', backendKey: `snap/${a}/resv-2` }, opts), Code.FAILED_PRECONDITION, `sequence number ${a} of snapshotter ${sn} is not reserved`);
    // Reserved for one snapshotter only.
    await expectCode(s.Prepare({ snapshotter: 'native', key: 'resv-2', backendKey: `snap/${b}/resv-2` }, opts), Code.FAILED_PRECONDITION, /is not reserved/);
    await expectCode(s.Prepare({ snapshotter: sn, key: 'resv-2', backendKey: `snap/${b}/other` }, opts), Code.INVALID_ARGUMENT, 'backend key "snap/' + b + '/other" is not "snap/<seq>/resv-2"');
    await expectCode(s.Prepare({ snapshotter: sn, key: 'resv-2', backendKey: `snap-other/${b}/resv-2` }, opts), Code.INVALID_ARGUMENT, /is not "snap\/<seq>\/resv-2"/);
    await expectCode(s.Prepare({ snapshotter: sn, key: 'resv-2', backendKey: `snap/0${b}/resv-2` }, opts), Code.INVALID_ARGUMENT);
    await expectCode(s.Prepare({ snapshotter: sn, key: 'resv-2', reserve: 65 }, opts), Code.INVALID_ARGUMENT, 'reserve 65: at most 64 sequence numbers per call');
    // A refused create leaves its reservation: the same one works next.
    await expectCode(s.Prepare({ snapshotter: sn, key: 'resv-1', backendKey: `snap/${b}/resv-1` }, opts), Code.ALREADY_EXISTS);
    expect((await s.View({ snapshotter: sn, key: 'resv-view', backendKey: `snap/${b}/resv-view` }, opts)).key).toBe(`snap/${b}/resv-view`);
    await expectCode(s.Stat({ snapshotter: sn, key: 'resv-2' }, opts), Code.NOT_FOUND);
  });

  it('removes in client terms and answers the backend key', async () => {
    const s = h.clients.snapshots;
    await s.Prepare({ snapshotter: sn, key: 'r1' }, opts);
    await s.Commit({ snapshotter: sn, name: 'r-base', key: 'r1' }, opts);
    const child = await s.Prepare({ snapshotter: sn, key: 'r2', parent: 'r-base' }, opts);
    const removed = await s.Remove({ snapshotter: sn, key: 'r2' }, opts);
    expect(removed.key).toBe(child.key);
    await s.Remove({ snapshotter: sn, key: 'r-base' }, opts);
    await expectCode(s.Stat({ snapshotter: sn, key: 'r-base' }, opts), Code.NOT_FOUND);
  });

  it('undoes a commit the backend refused with AbortCommit', async () => {
    const s = h.clients.snapshots;
    const prep = await s.Prepare({ snapshotter: sn, key: 'a1', labels: { x: '1' } }, opts);
    await s.Commit({ snapshotter: sn, name: 'a-name', key: 'a1' }, opts);
    await s.AbortCommit({ snapshotter: sn, name: 'a-name', key: 'a1' }, opts);
    expect((await s.Stat({ snapshotter: sn, key: 'a1' }, opts)).info).toMatchObject({ kind: KIND.ACTIVE, labels: { x: '1' } });
    expect((await s.Resolve({ snapshotter: sn, key: 'a1' }, opts)).key).toBe(prep.key);
    await expectCode(s.Stat({ snapshotter: sn, key: 'a-name' }, opts), Code.NOT_FOUND);
    await expectCode(s.AbortCommit({ snapshotter: sn, name: 'a-name', key: 'a1' }, opts), Code.NOT_FOUND);
  });

  it('updates labels by mask and says when the backend labels changed', async () => {
    const s = h.clients.snapshots;
    await s.Prepare({ snapshotter: sn, key: 'u1', labels: { a: '1' } }, opts);
    let r = await s.Update({ snapshotter: sn, info: { name: 'u1', labels: { b: '2' } }, updateMask: { paths: ['labels.b'] } }, opts);
    expect(r.info?.labels).toEqual({ a: '1', b: '2' });
    expect(r.backendLabelsChanged).toBe(false);
    r = await s.Update({ snapshotter: sn, info: { name: 'u1', labels: { 'containerd.io/snapshot/x': 'y' } } }, opts);
    expect(r.info?.labels).toEqual({ 'containerd.io/snapshot/x': 'y' });
    expect(r.backendLabelsChanged).toBe(true);
    expect(r.backendLabels).toEqual({ 'containerd.io/snapshot/x': 'y' });
    expect(r.backendKey).toMatch(/\/u1$/);
  });

  it('lists with filters in batches', async () => {
    const ns = inNs('snap-list');
    const s = h.clients.snapshots;
    await s.Prepare({ snapshotter: sn, key: 'p' }, ns);
    await s.Commit({ snapshotter: sn, name: 'base', key: 'p', labels: { layer: 'yes' } }, ns);
    for (let i = 0; i < 120; i++) await s.Prepare({ snapshotter: sn, key: `k${i}`, parent: 'base' }, ns);
    await s.View({ snapshotter: sn, key: 'view', parent: 'base' }, ns);
    const names = (filters: string[]) => collect(s.List({ snapshotter: sn, filters }, ns), (b) => b.info.map((i) => i.name));
    expect((await names([])).length).toBe(122);
    expect(await names(['kind==committed'])).toEqual(['base']);
    expect(await names(['kind==view'])).toEqual(['view']);
    expect(await names(['labels.layer==yes'])).toEqual(['base']);
    expect((await names(['parent==base'])).length).toBe(121);
    expect(await names(['name==k7'])).toEqual(['k7']);
    expect(await names([])).not.toContain('e1');
  });
});
