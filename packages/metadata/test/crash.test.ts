/**
 * kill -9 of the plugin process during a stream of writes and during a
 * collection: after a restart the store is consistent and a collection
 * finishes the job.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallOptions } from '@boxd/api';
import { collect, inNs, metadataClients } from './helpers.js';
import { startContentStore, startSnapshotServer, stopChild, waitForSocket, writeBackendBlob, type ContentStoreProcess, type SnapshotServer } from './backends.js';
import { FakeCore } from './core.js';

const BIN = new URL('../dist/bin.js', import.meta.url).pathname;

let dir: string;
let cs: ContentStoreProcess;
let snap: SnapshotServer;
let child: ChildProcess | undefined;
let clients: ReturnType<typeof metadataClients> | undefined;
let core: FakeCore | undefined;

async function startPluginProcess(): Promise<void> {
  const address = join(dir, 'md.sock');
  await rm(address, { force: true });
  child = spawn(process.execPath, [BIN, '--grpc-address', address, '--root', join(dir, 'md-root'), '--config', join(dir, 'md.toml'), '--log-level', 'error'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForSocket(address, child);
  clients = metadataClients(address);
  core = new FakeCore(clients, cs);
  core.addSnapshotter('snap', snap.address);
}

async function killPlugin(): Promise<void> {
  core?.close();
  for (const c of Object.values(clients ?? {})) c.close();
  await stopChild(child!, 'SIGKILL');
}

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-crash-');
  cs = await startContentStore(dir);
  snap = await startSnapshotServer(dir, 'snap', 4);
  await writeFile(
    join(dir, 'md.toml'),
    `content_address = "${cs.address}"\ntransport = "grpc"\ngc_delay_ms = 3600000\ngc_startup_delay_ms = -1\n[snapshotters.snap]\naddress = "${snap.address}"\n`,
  );
  await startPluginProcess();
});
afterAll(async () => {
  await killPlugin().catch(() => undefined);
  await snap.stop();
  await cs.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Every record points at something that exists: blobs on disk, snapshot parents and backend snapshots of committed layers. */
async function expectConsistent(namespaces: string[], inFlight = new Set<string>()): Promise<void> {
  const c = clients!;
  for (const name of namespaces) {
    const ns = inNs(name);
    const infos = await collect(c.content.List({ filters: [] }, ns), (b) => b.info);
    for (const info of infos) expect(existsSync(join(cs.root, 'blobs', 'sha256', info.digest.slice(7))), `blob ${info.digest}`).toBe(true);
    const snapshots = await collect(c.snapshots.List({ snapshotter: 'snap', filters: [] }, ns), (b) => b.info);
    const names = new Set(snapshots.map((s) => s.name));
    for (const s of snapshots) if (s.parent) expect(names.has(s.parent), `parent of ${s.name}`).toBe(true);
    // A commit whose answer the kill swallowed never reached the backend; the core saw it fail.
    for (const s of snapshots.filter((s) => s.kind === 3 && !inFlight.has(s.name))) {
      const backend = await c.snapshots.Resolve({ snapshotter: 'snap', key: s.name }, ns);
      expect(snap.snaps.has(backend.key), `backend of ${s.name}`).toBe(true);
    }
    for (const image of (await c.images.List({ filters: [] }, ns)).images) {
      expect(infos.map((i) => i.digest)).toContain(image.target?.digest);
    }
  }
}

async function writeLoad(ns: CallOptions, prefix: string, stop: () => boolean, inFlight: Set<string>): Promise<number> {
  let done = 0;
  const worker = async (w: number) => {
    for (let i = 0; !stop(); i++) {
      inFlight.add(`${prefix}-${w}-${i}-a`).add(`${prefix}-${w}-${i}-b`);
      try {
        const d = await core!.writeBlob(ns, `${prefix}-${w}-${i}`, Buffer.from(`${prefix} ${w} ${i}`), { 'containerd.io/gc.root': '1' });
        await core!.layer(ns, 'snap', `${prefix}-${w}-${i}-a`);
        await core!.layer(ns, 'snap', `${prefix}-${w}-${i}-b`, `${prefix}-${w}-${i}-a`);
        await clients!.images.Create({ image: { name: `${prefix}/${w}/${i}`, target: { mediaType: 'm', digest: d, size: 1 } } }, ns);
        done++;
        inFlight.delete(`${prefix}-${w}-${i}-a`);
        inFlight.delete(`${prefix}-${w}-${i}-b`);
      } catch {
        return;
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  return done;
}

describe('crash safety', () => {
  it('survives kill -9 in the middle of a stream of writes', async () => {
    let killed = false;
    const inFlight = new Set<string>();
    const load = writeLoad(inNs('crash-writes'), 'w', () => killed, inFlight);
    await sleep(1500);
    await killPlugin();
    killed = true;
    const done = await load;
    expect(done).toBeGreaterThan(0);

    await startPluginProcess();
    await expectConsistent(['crash-writes'], inFlight);
    const stats = await clients!.gc.Collect({});
    expect(stats.errors).toEqual([]);
    await expectConsistent(['crash-writes'], inFlight);
    // Writes work again after the restart.
    await core!.writeBlob(inNs('crash-writes'), 'after', Buffer.from('after restart'));
  });

  it('survives kill -9 in the middle of a collection, and the next collection completes it', async () => {
    const ns = inNs('crash-gc');
    // Garbage: a long unreferenced chain in the snapshotter and orphan blobs in the content store.
    await clients!.leases.Create({ id: 'setup' }, ns);
    const leased = inNs('crash-gc', 'setup');
    let parent = '';
    for (let i = 0; i < 150; i++) {
      await core!.layer(leased, 'snap', `g${i}`, parent);
      parent = `g${i}`;
    }
    const orphans = await Promise.all(Array.from({ length: 40 }, (_, i) => writeBackendBlob(cs.client, `orphan-${i}`, Buffer.from(`orphan ${i}`))));
    // What must survive: an image with its blob and a container on a short chain.
    const kept = await core!.writeBlob(ns, 'kept', Buffer.from('kept blob'));
    await clients!.images.Create({ image: { name: 'kept', target: { mediaType: 'm', digest: kept, size: 9 } } }, ns);
    await core!.layer(ns, 'snap', 'base');
    await core!.prepare(ns, 'snap', 'ctr', 'base');
    await clients!.containers.Create(
      { container: { id: 'ctr', runtime: { name: 'rt' }, spec: { type_url: 'spec', value: new Uint8Array() }, snapshotter: 'snap', snapshotKey: 'ctr' } },
      ns,
    );
    await clients!.leases.Delete({ id: 'setup' }, ns);
    const before = snap.snaps.size;

    const running = clients!.gc.Collect({}).catch((err: Error) => err);
    while (snap.snaps.size > before - 20) await sleep(5);
    await killPlugin();
    expect(await running).toBeInstanceOf(Error);
    expect(snap.snaps.size, 'the kill landed in the middle of the sweep').toBeGreaterThan(before - 150);

    await startPluginProcess();
    await expectConsistent(['crash-gc']);
    const stats = await clients!.gc.Collect({});
    expect(stats.errors).toEqual([]);
    expect([...snap.snaps.keys()].filter((k) => k.includes('/g'))).toEqual([]);
    for (const d of orphans) await expect(cs.client.Info({ digest: d })).rejects.toThrow();
    expect(existsSync(join(cs.root, 'blobs', 'sha256', kept.slice(7)))).toBe(true);
    expect((await clients!.snapshots.Stat({ snapshotter: 'snap', key: 'ctr' }, ns)).info?.parent).toBe('base');
    await expectConsistent(['crash-gc']);
  });
});

