/** A metadata plugin wired to real backends: the content store process and a snapshot server. */
import { mkdtemp, rm } from 'node:fs/promises';
import { startMetadata, type Harness } from './helpers.js';
import { startContentStore, startSnapshotServer, type ContentStoreProcess, type SnapshotServer } from './backends.js';
import { FakeCore } from './core.js';

export interface GcBed {
  dir: string;
  h: Harness;
  cs: ContentStoreProcess;
  snap: SnapshotServer;
  core: FakeCore;
  stop(): Promise<void>;
}

export async function startGcBed(): Promise<GcBed> {
  const dir = await mkdtemp('/tmp/bx-gc-');
  const cs = await startContentStore(dir);
  const snap = await startSnapshotServer(dir);
  const h = await startMetadata({ content_address: cs.address, transport: 'grpc', snapshotters: { snap: { address: snap.address } } });
  const core = new FakeCore(h.clients, cs);
  core.addSnapshotter('snap', snap.address);
  return {
    dir,
    h,
    cs,
    snap,
    core,
    async stop() {
      core.close();
      await h.stop();
      await snap.stop();
      await cs.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
