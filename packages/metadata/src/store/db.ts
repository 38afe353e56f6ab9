/**
 * The lmdb environment and its sub-databases. Every mutation runs in one
 * synchronous write transaction, so a kill -9 at any point leaves either the
 * old or the new state, and no two mutations (GC's sweep included) interleave.
 */
import { open, type Database, type RootDatabase, type Key } from 'lmdb';
import { join } from 'node:path';
import type {
  BackendKeyOwner,
  BlobHolder,
  ContainerRecord,
  ContentRecord,
  ImageRecord,
  IngestRecord,
  LeaseRecord,
  NamespaceRecord,
  RetiredSnapshot,
  SnapshotRecord,
} from './records.js';

export interface Stores {
  readonly root: RootDatabase;
  /** ns → namespace */
  readonly namespaces: Database<NamespaceRecord, string>;
  /** [ns, name] → image */
  readonly images: Database<ImageRecord, Key>;
  /** [ns, name] → the image as protobuf bytes, kept beside `images` so List needs no encoding */
  readonly imageMessages: Database<Buffer, Key>;
  /** [ns, id] → container */
  readonly containers: Database<ContainerRecord, Key>;
  /** [ns, id] → lease */
  readonly leases: Database<LeaseRecord, Key>;
  /** [ns, lease, type, id] → 1: resources attached to a lease */
  readonly leaseResources: Database<1, Key>;
  /** [ns, digest] → content */
  readonly content: Database<ContentRecord, Key>;
  /** [digest, ns] → size: which namespaces hold a blob */
  readonly blobs: Database<BlobHolder, Key>;
  /** [ns, ref] → ingest */
  readonly ingests: Database<IngestRecord, Key>;
  /** [ns, snapshotter, key] → snapshot */
  readonly snapshots: Database<SnapshotRecord, Key>;
  /** [ns, snapshotter, parent, child] → 1 */
  readonly snapshotChildren: Database<1, Key>;
  /** [snapshotter, backendKey] → owner: which record a backend key belongs to */
  readonly backendKeys: Database<BackendKeyOwner, Key>;
  /** [snapshotter, backendKey] → retired active snapshot awaiting the backend commit */
  readonly retired: Database<RetiredSnapshot, Key>;
  /** counters */
  readonly sequences: Database<number, Key>;
}

export function openStores(dir: string): Stores {
  // overlappingSync: a commit does not wait for the previous one's fsync; lmdb stays
  // consistent on a crash either way (it falls back to the last fully synced commit).
  const root = open({ path: join(dir, 'meta.lmdb'), maxDbs: 16, overlappingSync: true });
  const sub = <V>(name: string, keyEncoding?: 'ordered-binary') => root.openDB<V, Key>({ name, keyEncoding });
  return {
    root,
    namespaces: root.openDB<NamespaceRecord, string>({ name: 'namespaces' }),
    images: sub('images'),
    imageMessages: root.openDB<Buffer, Key>({ name: 'image-messages', encoding: 'binary' }),
    containers: sub('containers'),
    leases: sub('leases'),
    leaseResources: sub('lease-resources'),
    content: sub('content'),
    blobs: sub('blobs'),
    ingests: sub('ingests'),
    snapshots: sub('snapshots'),
    snapshotChildren: sub('snapshot-children'),
    backendKeys: sub('backend-keys'),
    retired: sub('retired'),
    sequences: sub('sequences'),
  };
}

/** Entries whose array key starts with `prefix`, in key order. */
export function* scanPrefix<V>(db: Database<V, Key>, prefix: readonly string[]): Generator<{ key: string[]; value: V }> {
  for (const { key, value } of db.getRange({ start: prefix as Key })) {
    const k = key as string[];
    if (!Array.isArray(k) || !startsWith(k, prefix)) return;
    yield { key: k, value };
  }
}

export function* scanKeys(db: Database<unknown, Key>, prefix: readonly string[]): Generator<string[]> {
  for (const key of db.getKeys({ start: prefix as Key })) {
    const k = key as string[];
    if (!Array.isArray(k) || !startsWith(k, prefix)) return;
    yield k;
  }
}

export function hasPrefix(db: Database<unknown, Key>, prefix: readonly string[]): boolean {
  for (const _ of scanKeys(db, prefix)) return true;
  return false;
}

function startsWith(key: readonly string[], prefix: readonly string[]): boolean {
  if (key.length < prefix.length) return false;
  return prefix.every((p, i) => key[i] === p);
}

/** Next value of a persistent counter; call inside a write transaction. */
export function nextSequence(stores: Stores, name: string): number {
  const next = (stores.sequences.get([name]) ?? 0) + 1;
  stores.sequences.putSync([name], next);
  return next;
}
