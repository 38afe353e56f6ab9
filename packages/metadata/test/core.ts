/**
 * What the core does for the public Content and Snapshots APIs, in the call
 * order README.md documents: the index first, then the backend, then the index.
 */
import { snapshots, type CallOptions } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import type { metadataClients } from './helpers.js';
import { digestOf, writeBackendBlob, type ContentStoreProcess } from './backends.js';

type Clients = ReturnType<typeof metadataClients>;

export class FakeCore {
  readonly snapshotters = new Map<string, ReturnType<typeof createGrpcClient<typeof snapshots.SnapshotsService>>>();

  constructor(
    readonly md: Clients,
    readonly cs: ContentStoreProcess,
  ) {}

  addSnapshotter(name: string, address: string): void {
    this.snapshotters.set(name, createGrpcClient(snapshots.SnapshotsService, address));
  }

  /** Content.Write of a whole blob: OpenIngest → write → PrepareCommit → commit → Add. */
  async writeBlob(opts: CallOptions, ref: string, data: Uint8Array, labels: Record<string, string> = {}): Promise<string> {
    const { ingest } = await this.md.content.OpenIngest({ ref, total: data.length }, opts);
    const digest = digestOf(data);
    await this.md.content.PrepareCommit({ ref, digest, size: data.length }, opts);
    await writeBackendBlob(this.cs.client, ingest!.backendRef, data);
    await this.md.content.Add({ digest, size: data.length, labels, ref }, opts);
    return digest;
  }

  async prepare(opts: CallOptions, snapshotter: string, key: string, parent = '', labels: Record<string, string> = {}): Promise<string> {
    const b = await this.md.snapshots.Prepare({ snapshotter, key, parent, labels }, opts);
    await this.snapshotters.get(snapshotter)!.Prepare({ snapshotter, key: b.key, parent: b.parent, labels: b.labels });
    return b.key;
  }

  async commit(opts: CallOptions, snapshotter: string, name: string, key: string, labels: Record<string, string> = {}): Promise<string> {
    const b = await this.md.snapshots.Commit({ snapshotter, name, key, labels }, opts);
    try {
      await this.snapshotters.get(snapshotter)!.Commit({ snapshotter, name: b.name, key: b.key, labels: b.labels });
    } catch (err) {
      await this.md.snapshots.AbortCommit({ snapshotter, name, key }, opts);
      throw err;
    }
    return b.name;
  }

  /** A committed snapshot: Prepare then Commit, as unpack does. */
  async layer(opts: CallOptions, snapshotter: string, name: string, parent = '', labels: Record<string, string> = {}): Promise<string> {
    const key = `extract-${name}`;
    await this.prepare(opts, snapshotter, key, parent);
    return this.commit(opts, snapshotter, name, key, labels);
  }

  close(): void {
    for (const c of this.snapshotters.values()) c.close();
  }
}
