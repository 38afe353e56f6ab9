/**
 * The backend half of a collection: remove from the content store and the
 * snapshotters what no record references. Each removal is decided right
 * before it is sent, against the store as it is then, so a reference
 * recorded while GC runs is never lost; blobs additionally go through the
 * BlobGuard so a writer referencing the digest waits for the delete.
 */
import { Code, errorCode } from '@boxd/api';
import type { Stores } from '../store/db.js';
import type { BlobGuard } from './blob-guard.js';
import type { ContentBackend, SnapshotsBackend } from '../backends/clients.js';
import { underReservation } from '../services/key-reservations.js';

export interface BackendStats {
  blobsDeleted: number;
  ingestsAborted: number;
  snapshotsRemoved: number;
  errors: string[];
}

export function emptyBackendStats(): BackendStats {
  return { blobsDeleted: 0, ingestsAborted: 0, snapshotsRemoved: 0, errors: [] };
}

const ignorable = (err: unknown) => errorCode(err) === Code.NOT_FOUND;

// A backend that stops answering must not hold up every later collection.
// (An abort signal rather than a deadline: grpc-js failed some first calls
// on a fresh channel with a deadline set, "reading 'toFixed'" of undefined.)
const call = () => ({ signal: AbortSignal.timeout(60_000) });

/** True while any namespace holds the blob or an ingest is about to commit it. */
export function blobReferenced(stores: Stores, digest: string): boolean {
  for (const key of stores.blobs.getKeys({ start: [digest] })) {
    if ((key as string[])[0] === digest) return true;
    break;
  }
  for (const { value } of stores.ingests.getRange({})) {
    if (value.expected === digest || value.committing === digest) return true;
  }
  return false;
}

export async function sweepContent(stores: Stores, backend: ContentBackend, guard: BlobGuard, stats: BackendStats): Promise<void> {
  const client = await backend.get();
  const digests: string[] = [];
  for await (const batch of client.List({ filters: [] })) for (const info of batch.info) digests.push(info.digest);
  for (const digest of digests) {
    // Check and claim in one synchronous step: see blob-guard.ts.
    if (blobReferenced(stores, digest)) continue;
    const done = guard.begin(digest);
    try {
      await client.Delete({ digest }, call());
      stats.blobsDeleted++;
      done(true);
    } catch (err) {
      done(false);
      if (!ignorable(err)) stats.errors.push(`content delete ${digest}: ${(err as Error).message}`);
    }
  }

  const { statuses } = await client.ListStatuses({ filters: [] }, call());
  // Backend refs are never reused, so one unreferenced now stays unreferenced.
  const live = new Set<string>();
  for (const { value } of stores.ingests.getRange({})) live.add(value.backendRef);
  for (const status of statuses) {
    if (live.has(status.ref)) continue;
    try {
      await client.Abort({ ref: status.ref }, call());
      stats.ingestsAborted++;
    } catch (err) {
      if (!ignorable(err)) stats.errors.push(`content abort ${status.ref}: ${(err as Error).message}`);
    }
  }
}

export async function sweepSnapshotter(stores: Stores, name: string, backend: SnapshotsBackend, stats: BackendStats): Promise<void> {
  const client = await backend.get();
  const parents = new Map<string, string>();
  for await (const batch of client.List({ snapshotter: name, filters: [] })) {
    for (const info of batch.info) parents.set(info.name, info.parent);
  }
  // Backend keys are never reused either: a record made from now on names a new key,
  // or one under a reservation held now.
  const referenced = (key: string) =>
    stores.backendKeys.get([name, key]) !== undefined || stores.retired.get([name, key]) !== undefined || underReservation(stores, name, key);
  const children = new Map<string, number>();
  for (const parent of parents.values()) if (parent) children.set(parent, (children.get(parent) ?? 0) + 1);

  // Leaves first: a snapshotter refuses to remove a snapshot with children.
  let pending = [...parents.keys()].filter((key) => !referenced(key));
  while (pending.length > 0) {
    const leaves = pending.filter((key) => !children.get(key));
    if (leaves.length === 0) break;
    for (const key of leaves) {
      try {
        await client.Remove({ snapshotter: name, key }, call());
        stats.snapshotsRemoved++;
      } catch (err) {
        if (!ignorable(err)) {
          stats.errors.push(`snapshot remove ${name}/${key}: ${(err as Error).message}`);
          continue;
        }
      }
      const parent = parents.get(key);
      if (parent) children.set(parent, children.get(parent)! - 1);
    }
    const done = new Set(leaves);
    pending = pending.filter((key) => !done.has(key));
  }

  try {
    await client.Cleanup({ snapshotter: name }, call());
  } catch (err) {
    const code = errorCode(err);
    if (code !== Code.UNIMPLEMENTED && code !== Code.NOT_FOUND) stats.errors.push(`snapshot cleanup ${name}: ${(err as Error).message}`);
  }
}
