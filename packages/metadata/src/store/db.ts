/**
 * The lmdb environment and its sub-databases. Every mutation runs in one
 * synchronous write transaction, so a kill -9 at any point leaves either the
 * old or the new state, and no two mutations (GC's sweep included) interleave.
 */
import { existsSync } from 'node:fs';
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
  /** [snapshotter, seq] → when: a sequence number the core holds for a backend key it may create before recording it */
  readonly reservedKeys: Database<number, Key>;
  /** counters */
  readonly sequences: Database<number, Key>;
  /** backend → 1: swept clean since its references last changed (see gc/dirty.ts); no change notices */
  readonly cleanBackends: Database<1, string>;
  /** The store was made by this open: it has never referenced anything. */
  readonly created: boolean;
}

/**
 * Told the name of each table (its `Stores` field) a write touches and the key it
 * wrote (none when it cleared the table), after the write.
 */
export type WriteListener = (table: keyof Omit<Stores, 'root' | 'cleanBackends' | 'created'>, key?: unknown) => void;

const WRITE_METHODS = ['putSync', 'removeSync', 'clearSync'] as const;

/** The same database, reporting its writes: what the change notices name. */
function reportingWrites<D extends Database<never, Key>>(db: D, table: Parameters<WriteListener>[0], onWrite: WriteListener): D {
  const methods = db as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of WRITE_METHODS) {
    const write = methods[name]!;
    const keyed = name !== 'clearSync';
    methods[name] = function (this: unknown, ...args: unknown[]) {
      const result = write.apply(this, args);
      if (keyed) onWrite(table, args[0]);
      else onWrite(table);
      return result;
    };
  }
  return db;
}

export function openStores(dir: string, onWrite: WriteListener = () => undefined): Stores {
  // overlappingSync: a commit does not wait for the previous one's fsync; lmdb stays
  // consistent on a crash either way (it falls back to the last fully synced commit).
  const path = join(dir, 'meta.lmdb');
  const created = !existsSync(path);
  const root = open({ path, maxDbs: 24, overlappingSync: true });
  const db = <V>(table: Parameters<WriteListener>[0], name: string, options: { keyEncoding?: 'ordered-binary'; encoding?: 'binary' } = {}) =>
    reportingWrites(root.openDB<V, Key>({ name, ...options }) as Database<never, Key>, table, onWrite) as unknown as Database<V, Key>;
  // In one transaction: on a new store each table made is otherwise a synced commit of its own.
  return root.transactionSync(() => ({
    root,
    namespaces: db<NamespaceRecord>('namespaces', 'namespaces') as unknown as Database<NamespaceRecord, string>,
    images: db('images', 'images'),
    imageMessages: db('imageMessages', 'image-messages', { encoding: 'binary' }),
    containers: db('containers', 'containers'),
    leases: db('leases', 'leases'),
    leaseResources: db('leaseResources', 'lease-resources'),
    content: db('content', 'content'),
    blobs: db('blobs', 'blobs'),
    ingests: db('ingests', 'ingests'),
    snapshots: db('snapshots', 'snapshots'),
    snapshotChildren: db('snapshotChildren', 'snapshot-children'),
    backendKeys: db('backendKeys', 'backend-keys'),
    retired: db('retired', 'retired'),
    reservedKeys: db('reservedKeys', 'reserved-keys'),
    sequences: db('sequences', 'sequences'),
    cleanBackends: root.openDB<1, string>({ name: 'clean-backends' }),
    created,
  }));
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
