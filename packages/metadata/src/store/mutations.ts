/** Writing and dropping snapshot records with their indexes. Call inside a write transaction. */
import type { Stores } from './db.js';
import type { SnapshotRecord } from './records.js';

export function putSnapshot(stores: Stores, ns: string, snapshotter: string, key: string, record: SnapshotRecord): void {
  stores.snapshots.putSync([ns, snapshotter, key], record);
  stores.backendKeys.putSync([snapshotter, record.backendKey], { ns, key });
  if (record.parent) stores.snapshotChildren.putSync([ns, snapshotter, record.parent, key], 1);
}

export function dropSnapshot(stores: Stores, ns: string, snapshotter: string, key: string, record: SnapshotRecord): void {
  stores.snapshots.removeSync([ns, snapshotter, key]);
  stores.backendKeys.removeSync([snapshotter, record.backendKey]);
  if (record.parent) stores.snapshotChildren.removeSync([ns, snapshotter, record.parent, key]);
}

export function dropContent(stores: Stores, ns: string, digest: string): void {
  stores.content.removeSync([ns, digest]);
  stores.blobs.removeSync([digest, ns]);
}
