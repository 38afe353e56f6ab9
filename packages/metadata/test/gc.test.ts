import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, snapshots } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { expectCode, inNs, startMetadata, type Harness } from './helpers.js';
import { startPluginBin, startSnapshotServer, writeBackendBlob, digestOf, type ContentStoreProcess, type SnapshotServer } from './backends.js';
import { FakeCore } from './core.js';
import { startGcBed, type GcBed } from './bed.js';

let bed: GcBed;
let h: Harness;
let cs: ContentStoreProcess;
let snap: SnapshotServer;
let core: FakeCore;
let dir: string;

beforeAll(async () => {
  bed = await startGcBed();
  ({ h, cs, snap, core, dir } = bed);
});
afterAll(() => bed.stop());

const blobFile = (digest: string) => join(cs.root, 'blobs', 'sha256', digest.slice('sha256:'.length));
const onDisk = (digest: string) => existsSync(blobFile(digest));
const bytes = (s: string) => Buffer.from(s);
const backendHas = (key: string) => snap.snaps.has(key) && existsSync(snap.dirOf(key));

describe('garbage collection', () => {
  it('keeps an image with everything its labels reach, and removes it all once the image goes', async () => {
    const ns = inNs('gc-image');
    const layer = await core.writeBlob(ns, 'layer', bytes('layer-data'));
    const l1 = await core.layer(ns, 'snap', 'sha256:chain1');
    const l2 = await core.layer(ns, 'snap', 'sha256:chain2', 'sha256:chain1');
    const config = await core.writeBlob(ns, 'config', bytes('config-data'), { 'containerd.io/gc.ref.snapshot.snap': 'sha256:chain2' });
    const manifest = await core.writeBlob(ns, 'manifest', bytes('manifest-data'), {
      'containerd.io/gc.ref.content.config': config,
      'containerd.io/gc.ref.content.l.0': layer,
    });
    const stray = await core.writeBlob(ns, 'stray', bytes('nobody wants me'));
    const strayLayer = await core.layer(ns, 'snap', 'sha256:stray');
    await h.clients.images.Create({ image: { name: 'bb:latest', target: { mediaType: 'm', digest: manifest, size: 13 } } }, ns);

    const stats = await h.clients.gc.Collect({});
    expect(stats.content).toBe(1);
    expect(stats.snapshots).toBe(1);
    expect(stats.errors).toEqual([]);
    for (const d of [layer, config, manifest]) expect(onDisk(d)).toBe(true);
    expect(onDisk(stray)).toBe(false);
    await expectCode(h.clients.content.Info({ digest: stray }, ns), Code.NOT_FOUND);
    expect(backendHas(l1) && backendHas(l2)).toBe(true);
    expect(backendHas(strayLayer)).toBe(false);

    await h.clients.images.Delete({ name: 'bb:latest', sync: true }, ns);
    for (const d of [layer, config, manifest]) expect(onDisk(d)).toBe(false);
    expect(backendHas(l1) || backendHas(l2)).toBe(false);
    expect((await h.clients.snapshots.List({ snapshotter: 'snap', filters: [] }, ns)[Symbol.asyncIterator]().next()).done).toBe(true);
  });

  it('keeps what a lease holds until it expires; a flat lease protects only what is attached', async () => {
    const ns = inNs('gc-lease');
    await h.clients.leases.Create({ id: 'live', labels: { 'containerd.io/gc.expire': new Date(Date.now() + 3600_000).toISOString() } }, ns);
    await h.clients.leases.Create({ id: 'old', labels: { 'containerd.io/gc.expire': '2001-01-01T00:00:00Z' } }, ns);
    await h.clients.leases.Create({ id: 'flat', labels: { 'containerd.io/gc.flat': new Date().toISOString() } }, ns);
    const child = await core.writeBlob(ns, 'child', bytes('child'));
    const live = await core.writeBlob(inNs('gc-lease', 'live'), 'live', bytes('live'), { 'containerd.io/gc.ref.content': child });
    const old = await core.writeBlob(inNs('gc-lease', 'old'), 'old', bytes('old'));
    const flatChild = await core.writeBlob(ns, 'flat-child', bytes('flat-child'));
    const flat = await core.writeBlob(inNs('gc-lease', 'flat'), 'flat', bytes('flat'), { 'containerd.io/gc.ref.content': flatChild });
    await core.layer(ns, 'snap', 'base');
    const top = await core.prepare(inNs('gc-lease', 'flat'), 'snap', 'work', 'base');

    await h.clients.gc.Collect({});
    expect([live, child, flat].map(onDisk)).toEqual([true, true, true]);
    expect([old, flatChild].map(onDisk)).toEqual([false, false]);
    expect((await h.clients.leases.List({ filters: [] }, ns)).leases.map((l) => l.id).sort()).toEqual(['flat', 'live']);
    // A flat lease still keeps a snapshot's parents: the snapshot needs them.
    expect(backendHas(top)).toBe(true);
    expect((await h.clients.snapshots.Stat({ snapshotter: 'snap', key: 'base' }, ns)).info?.name).toBe('base');

    await h.clients.leases.Delete({ id: 'flat', sync: true }, ns);
    expect(onDisk(flat)).toBe(false);
    expect(backendHas(top)).toBe(false);
    await expectCode(h.clients.snapshots.Stat({ snapshotter: 'snap', key: 'base' }, ns), Code.NOT_FOUND);
  });

  it('keeps container snapshots, gc.root objects and label references from containers', async () => {
    const ns = inNs('gc-ctr');
    await core.layer(ns, 'snap', 'img-top');
    const rw = await core.prepare(ns, 'snap', 'c1', 'img-top');
    const referenced = await core.writeBlob(ns, 'ref', bytes('referenced by a container'));
    const rooted = await core.writeBlob(ns, 'root', bytes('rooted'), { 'containerd.io/gc.root': 'yes' });
    const rootSnap = await core.layer(ns, 'snap', 'rooted', '', { 'containerd.io/gc.root': 'yes' });
    await h.clients.containers.Create(
      {
        container: {
          id: 'c1',
          runtime: { name: 'rt' },
          spec: { type_url: 'spec', value: new Uint8Array() },
          snapshotter: 'snap',
          snapshotKey: 'c1',
          labels: { 'containerd.io/gc.ref.content.x': referenced },
        },
      },
      ns,
    );
    await h.clients.gc.Collect({});
    expect(backendHas(rw) && backendHas(rootSnap)).toBe(true);
    expect(onDisk(referenced) && onDisk(rooted)).toBe(true);
    await h.clients.containers.Delete({ id: 'c1' }, ns);
    await h.clients.gc.Collect({});
    expect(backendHas(rw)).toBe(false);
    expect(onDisk(referenced)).toBe(false);
    expect(onDisk(rooted) && backendHas(rootSnap)).toBe(true);
  });

  it('keeps a blob shared by two namespaces until neither holds it', async () => {
    const data = bytes('shared blob');
    const d = await core.writeBlob(inNs('gc-a'), 'x', data, { 'containerd.io/gc.root': '1' });
    const opened = await h.clients.content.OpenIngest({ ref: 'x', expected: d, total: data.length }, inNs('gc-b'));
    expect(opened.shared).toBe(true);
    await h.clients.content.Add({ digest: d, size: data.length, ref: 'x', labels: { 'containerd.io/gc.root': '1' } }, inNs('gc-b'));
    await h.clients.content.Delete({ digest: d }, inNs('gc-a'));
    await h.clients.gc.Collect({});
    expect(onDisk(d)).toBe(true);
    await h.clients.content.Delete({ digest: d }, inNs('gc-b'));
    await h.clients.gc.Collect({});
    expect(onDisk(d)).toBe(false);
  });

  it('removes orphans in the backends, children before parents, and aborts ingests nobody tracks', async () => {
    const orphan = await writeBackendBlob(cs.client, 'orphan', bytes('orphan'));
    const s = core.snapshotters.get('snap')!;
    await s.Prepare({ snapshotter: 'snap', key: 'o1' });
    await s.Commit({ snapshotter: 'snap', name: 'o1c', key: 'o1' });
    await s.Prepare({ snapshotter: 'snap', key: 'o2', parent: 'o1c' });
    const w = cs.client.Write();
    await w.send({ action: 1, ref: 'orphan-ingest', data: bytes('partial'), offset: 0 });
    await w.end();
    for await (const _ of w) void _;
    expect((await cs.client.ListStatuses({ filters: [] })).statuses.map((st) => st.ref)).toContain('orphan-ingest');

    const stats = await h.clients.gc.Collect({});
    expect(stats.errors).toEqual([]);
    expect(onDisk(orphan)).toBe(false);
    expect(snap.snaps.has('o1c') || snap.snaps.has('o2')).toBe(false);
    expect((await cs.client.ListStatuses({ filters: [] })).statuses.map((st) => st.ref)).not.toContain('orphan-ingest');
  });

  it('tracks ingests: leased ones live with the lease, unleased ones until they expire', async () => {
    const ns = inNs('gc-ingest');
    await h.clients.leases.Create({ id: 'pull' }, ns);
    const leased = (await h.clients.content.OpenIngest({ ref: 'layer-a' }, inNs('gc-ingest', 'pull'))).ingest!;
    const unleased = (await h.clients.content.OpenIngest({ ref: 'layer-b' }, ns)).ingest!;
    for (const ingest of [leased, unleased]) {
      const w = cs.client.Write();
      await w.send({ action: 1, ref: ingest.backendRef, data: bytes('half'), offset: 0 });
      await w.end();
      for await (const _ of w) void _;
    }
    const backendRefs = async () => (await cs.client.ListStatuses({ filters: [] })).statuses.map((s) => s.ref);
    await h.clients.gc.Collect({});
    expect(await backendRefs()).toEqual(expect.arrayContaining([leased.backendRef, unleased.backendRef]));
    await h.clients.leases.Delete({ id: 'pull', sync: true }, ns);
    await expectCode(h.clients.content.GetIngest({ ref: 'layer-a' }, ns), Code.NOT_FOUND);
    expect(await backendRefs()).not.toContain(leased.backendRef);
    expect(await backendRefs()).toContain(unleased.backendRef);
    expect((await h.clients.content.GetIngest({ ref: 'layer-b' }, ns)).expiresAt).toBeTruthy();
  });

  it('protects a blob between the backend commit and Add, and an active key between index and backend commit', async () => {
    const ns = inNs('gc-race');
    const data = bytes('committing now');
    const digest = digestOf(data);
    const { ingest } = await h.clients.content.OpenIngest({ ref: 'r' }, ns);
    await h.clients.content.PrepareCommit({ ref: 'r', digest }, ns);
    await writeBackendBlob(cs.client, ingest!.backendRef, data);
    await h.clients.gc.Collect({});
    expect(onDisk(digest)).toBe(true);
    await h.clients.content.Add({ digest, size: data.length, ref: 'r', labels: { 'containerd.io/gc.root': '1' } }, ns);

    await h.clients.leases.Create({ id: 'unpack' }, ns);
    const leased = inNs('gc-race', 'unpack');
    const key = await core.prepare(leased, 'snap', 'extract-x');
    const b = await h.clients.snapshots.Commit({ snapshotter: 'snap', name: 'chain-x', key: 'extract-x' }, leased);
    await h.clients.gc.Collect({});
    expect(backendHas(key)).toBe(true);
    await core.snapshotters.get('snap')!.Commit({ snapshotter: 'snap', name: b.name, key: b.key });
    await h.clients.gc.Collect({});
    expect(backendHas(b.name)).toBe(true);
  });

  it('reaches the content store over ttrpc by default', async () => {
    const viaTtrpc = await startMetadata({ content_address: cs.ttrpcAddress });
    try {
      const ns = inNs('gc-ttrpc');
      const d = await new FakeCore(viaTtrpc.clients, cs).writeBlob(ns, 't', bytes('over ttrpc'));
      const orphan = await writeBackendBlob(cs.client, 'ttrpc-orphan', bytes('ttrpc orphan'));
      await viaTtrpc.clients.content.Delete({ digest: d }, ns);
      const stats = await viaTtrpc.clients.gc.Collect({});
      expect(stats.errors).toEqual([]);
      expect(stats.blobsDeleted).toBeGreaterThanOrEqual(2);
      expect(onDisk(d) || onDisk(orphan)).toBe(false);
    } finally {
      await viaTtrpc.stop();
    }
  });

  it('cleans the native snapshotter (its bin, over ttrpc)', async () => {
    const native = await startPluginBin('@boxd/snapshotter-native', dir, 'native');
    const md = await startMetadata({ snapshotters: { native: { address: native.ttrpcAddress } } });
    const nativeCore = new FakeCore(md.clients, cs);
    nativeCore.addSnapshotter('native', native.address);
    try {
      const ns = inNs('gc-native');
      const backendKeys = async () => {
        const keys: string[] = [];
        for await (const b of nativeCore.snapshotters.get('native')!.List({ snapshotter: 'native', filters: [] })) keys.push(...b.info.map((i) => i.name));
        return keys.sort();
      };
      const dirs = async () => (await readdir(join(native.root, 'snapshots'))).length;
      const base = await nativeCore.layer(ns, 'native', 'base');
      const top = await nativeCore.layer(ns, 'native', 'top', 'base');
      const rw = await nativeCore.prepare(ns, 'native', 'c1', 'top');
      await md.clients.containers.Create(
        { container: { id: 'c1', runtime: { name: 'rt' }, spec: { type_url: 'spec', value: new Uint8Array() }, snapshotter: 'native', snapshotKey: 'c1' } },
        ns,
      );
      await md.clients.gc.Collect({});
      expect(await backendKeys()).toEqual([base, top, rw].sort());
      expect(await dirs()).toBe(3);
      await md.clients.containers.Delete({ id: 'c1' }, ns);
      const stats = await md.clients.gc.Collect({});
      expect(stats.errors).toEqual([]);
      expect(stats.backendSnapshotsRemoved).toBe(3);
      expect(await backendKeys()).toEqual([]);
      expect(await dirs()).toBe(0);
    } finally {
      nativeCore.close();
      await md.stop();
      await native.stop();
    }
  });

  it('leaves a backend snapshot made under a reserved sequence number until the reservation is used or expires', async () => {
    const native = await startPluginBin('@boxd/snapshotter-native', dir, 'native-resv');
    const md = await startMetadata({ snapshotters: { native: { address: native.ttrpcAddress } }, key_reservation_ttl_ms: 1500 });
    const backend = createGrpcClient(snapshots.SnapshotsService, native.address);
    try {
      const name = 'gc-resv';
      await md.clients.leases.Create({ id: 'hold' }, inNs(name));
      const ns = inNs(name, 'hold');
      const backendKeys = async () => {
        const keys: string[] = [];
        for await (const b of backend.List({ snapshotter: 'native', filters: [] })) keys.push(...b.info.map((i) => i.name));
        return keys.sort();
      };
      const first = await md.clients.snapshots.Prepare({ snapshotter: 'native', key: 'first', reserve: 2 }, ns);
      expect(first.reservationTtlMs).toBe(1500);
      const [used, unused] = first.reserved.map(String);
      await backend.Prepare({ snapshotter: 'native', key: first.key });
      // As the core does: the backend snapshot first, the record while (here: after) it is made.
      await backend.Prepare({ snapshotter: 'native', key: `${name}/${used}/early` });
      await backend.Prepare({ snapshotter: 'native', key: `${name}/${unused}/never-recorded` });
      const early = await md.clients.snapshots.Prepare({ snapshotter: 'native', key: 'early', backendKey: `${name}/${used}/early` }, ns);
      expect(early.key).toBe(`${name}/${used}/early`);

      let stats = await md.clients.gc.Collect({});
      expect(stats.errors).toEqual([]);
      expect(await backendKeys()).toEqual([first.key, early.key, `${name}/${unused}/never-recorded`].sort());

      await new Promise((r) => setTimeout(r, 1600));
      stats = await md.clients.gc.Collect({});
      expect(stats.errors).toEqual([]);
      expect(await backendKeys()).toEqual([first.key, early.key].sort());
      await expectCode(
        md.clients.snapshots.Prepare({ snapshotter: 'native', key: 'never-recorded', backendKey: `${name}/${unused}/never-recorded` }, ns),
        Code.FAILED_PRECONDITION,
        /is not reserved/,
      );
    } finally {
      backend.close();
      await md.stop();
      await native.stop();
    }
  });

  it('reports a backend that is down without failing the collection', async () => {
    const down = await startMetadata({ content_address: join(dir, 'nothing-here.sock'), snapshotters: { gone: { address: join(dir, 'gone.sock'), transport: 'grpc' } } });
    try {
      await down.clients.content.Add({ digest: digestOf(bytes('x')), size: 1 }, inNs('gc-down'));
      const stats = await down.clients.gc.Collect({});
      expect(stats.content).toBe(1);
      expect(stats.errors.length).toBe(2);
    } finally {
      await down.stop();
    }
  });

  it('waits for deletions to pause, but no longer than gc_max_delay_ms', async () => {
    const auto = await startMetadata({ content_address: cs.address, transport: 'grpc', gc_delay_ms: 400, gc_max_delay_ms: 1500 });
    try {
      const ns = inNs('gc-burst');
      const d = await new FakeCore(auto.clients, cs).writeBlob(ns, 'burst', bytes('burst'), { 'containerd.io/gc.root': '1' });
      const started = Date.now();
      await auto.clients.content.Delete({ digest: d }, ns);
      // A deletion every 100 ms: never a 400 ms pause.
      let removedAt: number | undefined;
      for (let i = 0; Date.now() - started < 4000 && removedAt === undefined; i++) {
        await auto.clients.leases.Create({ id: `burst-${i}` }, ns);
        await auto.clients.leases.Delete({ id: `burst-${i}` }, ns);
        if (Date.now() - started < 300) expect(onDisk(d)).toBe(true);
        if (!onDisk(d)) removedAt = Date.now() - started;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(removedAt).toBeDefined();
      expect(removedAt!).toBeGreaterThanOrEqual(1400);
      expect(removedAt!).toBeLessThan(3500);
    } finally {
      await auto.stop();
    }
  });

  it('collects by itself, debounced, after a deletion', async () => {
    const auto = await startMetadata({ content_address: cs.address, transport: 'grpc', gc_delay_ms: 50 });
    try {
      const ns = inNs('gc-auto');
      const autoCore = new FakeCore(auto.clients, cs);
      const d = await autoCore.writeBlob(ns, 'auto', bytes('auto'), { 'containerd.io/gc.root': '1' });
      await auto.clients.content.Delete({ digest: d }, ns);
      const deadline = Date.now() + 5000;
      while (onDisk(d) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(onDisk(d)).toBe(false);
    } finally {
      await auto.stop();
    }
  });

  it('a scheduled collection sweeps only the backends whose references changed; GC.Collect sweeps all', async () => {
    const collector = h.instance.collector;
    await collector.collect();
    const s = core.snapshotters.get('snap')!;
    // Made behind the index's back: nothing marks the backends dirty.
    const orphanBlob = await writeBackendBlob(cs.client, 'quiet-orphan', bytes('quiet orphan'));
    await s.Prepare({ snapshotter: 'snap', key: 'quiet-orphan' });
    await collector.collect();
    expect(onDisk(orphanBlob)).toBe(true);
    expect(backendHas('quiet-orphan')).toBe(true);

    // A snapshot record removed through the index: the snapshotter is dirty, the content store is not.
    const ns = inNs('gc-dirty');
    await core.prepare(ns, 'snap', 'dirty-1');
    await h.clients.snapshots.Remove({ snapshotter: 'snap', key: 'dirty-1' }, ns);
    await collector.collect();
    expect(backendHas('quiet-orphan')).toBe(false);
    expect(onDisk(orphanBlob)).toBe(true);

    await h.clients.gc.Collect({});
    expect(onDisk(orphanBlob)).toBe(false);
  });

  it('remembers across a restart which backends were swept clean, and which were left dirty', async () => {
    // A snapshotter and a store of their own: a fresh index would see the shared ones' snapshots as garbage.
    const own = await startSnapshotServer(dir, 'snap-restart');
    const root = join(dir, 'md-restart');
    const config = { transport: 'grpc', snapshotters: { snap: { address: own.address } } };
    const start = () => startMetadata(config, root);
    const orphan = async (key: string) => {
      const c = new FakeCore(m.clients, cs);
      c.addSnapshotter('snap', own.address);
      await c.snapshotters.get('snap')!.Prepare({ snapshotter: 'snap', key });
      c.close();
    };
    let m = await start();
    try {
      // A store made just now counts every backend clean: its first collection lists none.
      await orphan('on-a-new-store');
      await m.instance.collector.collect();
      expect(own.snaps.has('on-a-new-store')).toBe(true);
      // A write through the index dirties the snapshotter; its sweep takes what the index never held.
      const first = new FakeCore(m.clients, cs);
      first.addSnapshotter('snap', own.address);
      await first.prepare(inNs('gc-restart'), 'snap', 'dirtying');
      first.close();
      await m.clients.snapshots.Remove({ snapshotter: 'snap', key: 'dirtying' }, inNs('gc-restart'));
      await m.instance.collector.collect();
      expect(own.snaps.has('on-a-new-store')).toBe(false);
      await orphan('after-clean-sweep');
      await m.stop();

      m = await start();
      await m.instance.collector.collect();
      expect(own.snaps.has('after-clean-sweep')).toBe(true);

      // Dirty when the plugin stops: the next start sweeps it.
      const ns = inNs('gc-restart');
      const c = new FakeCore(m.clients, cs);
      c.addSnapshotter('snap', own.address);
      await c.prepare(ns, 'snap', 'will-go');
      c.close();
      await m.clients.snapshots.Remove({ snapshotter: 'snap', key: 'will-go' }, ns);
      await m.stop();

      m = await start();
      await m.instance.collector.collect();
      expect(own.snaps.has('after-clean-sweep')).toBe(false);
      expect([...own.snaps.keys()]).toEqual([]);
    } finally {
      await m.stop();
      await own.stop();
    }
  });
});
