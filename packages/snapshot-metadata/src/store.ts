/**
 * Snapshot metadata in lmdb.
 *
 * Every change runs in one synchronous write transaction, so a process killed
 * at any moment leaves either the old or the new state. Directory moves that
 * must agree with the metadata (placing a new snapshot's directory) run inside
 * that transaction too: if the move fails, nothing is recorded.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  applyLabelMask,
  goQuote,
  validateLabels,
} from '@boxd/api';
import { Kind, type SnapshotChain, type SnapshotInfo, type SnapshotRecord, type Usage } from './records.js';

/** lmdb keys are limited to ~2 KB; snapshot keys are kept well below that. */
export const MAX_KEY_BYTES = 1024;

export interface Placement {
  /** False when something already occupies the directory of `id` (left by a crash); the next id is tried. */
  isFree(id: number): boolean;
  /** Moves the new snapshot's directory into place. Runs inside the write transaction, which aborts if it throws. */
  place(id: number): void;
}

type ChildKey = [parentId: number, childId: number];

export class SnapshotStore {
  private constructor(
    private readonly env: RootDatabase,
    private readonly snapshots: Database<SnapshotRecord, string>,
    /** parent id + child id -> child key: answers "has children" without a scan. */
    private readonly children: Database<string, ChildKey>,
    private readonly counters: Database<number, string>,
  ) {}

  static open(path: string): SnapshotStore {
    const env = open({ path, compression: false });
    return new SnapshotStore(
      env,
      env.openDB<SnapshotRecord, string>({ name: 'snapshots' }),
      env.openDB<string, ChildKey>({ name: 'children' }),
      env.openDB<number, string>({ name: 'counters' }),
    );
  }

  async close(): Promise<void> {
    await this.env.close();
  }

  get(key: string): SnapshotInfo | undefined {
    const record = this.snapshots.get(key);
    return record && toInfo(key, record);
  }

  /** NOT_FOUND when the key is unknown. */
  stat(key: string): SnapshotInfo {
    const info = this.get(key);
    if (!info) throw new NotFoundError(`snapshot ${key} does not exist`);
    return info;
  }

  /** A snapshot and its ancestors' ids, nearest first. */
  chain(key: string): SnapshotChain {
    const info = this.stat(key);
    return { info, parentIds: this.ancestorIds(info.parent) };
  }

  /**
   * Checks that a snapshot `key` on `parent` could be created now and returns
   * the parent chain's ids. Called before slow preparation work and again
   * inside the transaction that creates the snapshot.
   */
  checkCreate(key: string, parent: string): number[] {
    checkKey(key, 'key');
    if (this.snapshots.doesExist(key)) throw new AlreadyExistsError(`snapshot ${goQuote(key)}`);
    if (!parent) return [];
    const p = this.snapshots.get(parent);
    if (!p) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
    if (p.kind !== Kind.COMMITTED) throw new InvalidArgumentError(`parent ${goQuote(parent)} is not committed snapshot`);
    return [p.id, ...this.ancestorIds(p.parent)];
  }

  create(kind: Kind, key: string, parent: string, labels: Record<string, string>, placement: Placement): SnapshotChain {
    if (kind !== Kind.ACTIVE && kind !== Kind.VIEW) {
      throw new InvalidArgumentError(`snapshot type ${kind} invalid; only snapshots of type Active or View can be created`);
    }
    validateLabels(labels);
    return this.env.transactionSync(() => {
      const parentIds = this.checkCreate(key, parent);
      const id = this.allocateId(placement);
      const now = Date.now();
      const record: SnapshotRecord = { id, kind, parent, labels: { ...labels }, createdAt: now, updatedAt: now };
      this.snapshots.putSync(key, record);
      if (parent) this.children.putSync([parentIds[0]!, id], key);
      placement.place(id);
      return { info: toInfo(key, record), parentIds };
    });
  }

  /** The active snapshot `key` that `commit(key, name)` would turn into `name`; throws what commit would. */
  checkCommit(key: string, name: string): SnapshotInfo {
    checkKey(name, 'name');
    if (this.snapshots.doesExist(name)) throw new AlreadyExistsError(`snapshot ${goQuote(name)}`);
    const active = this.stat(key);
    if (active.kind !== Kind.ACTIVE) throw new FailedPreconditionError(`snapshot ${goQuote(key)} is not active`);
    return active;
  }

  /** Turns active `key` into committed `name`; the key is gone afterwards, the id and parent stay. */
  commit(key: string, name: string, labels: Record<string, string>, usage: Usage): SnapshotInfo {
    validateLabels(labels);
    return this.env.transactionSync(() => {
      const active = this.checkCommit(key, name);
      const now = Date.now();
      // Labels are replaced, not inherited from the active snapshot.
      const record: SnapshotRecord = {
        id: active.id,
        kind: Kind.COMMITTED,
        parent: active.parent,
        labels: { ...labels },
        createdAt: now,
        updatedAt: now,
        usage,
      };
      this.snapshots.removeSync(key);
      this.snapshots.putSync(name, record);
      if (active.parent) this.children.putSync([this.snapshots.get(active.parent)!.id, active.id], name);
      return toInfo(name, record);
    });
  }

  /** Forgets `key`; its directory is the caller's to remove. */
  remove(key: string): SnapshotInfo {
    return this.env.transactionSync(() => {
      const info = this.get(key);
      if (!info) throw new NotFoundError(`snapshot ${key} does not exist`);
      if (this.hasChildren(info.id)) throw new FailedPreconditionError('cannot remove snapshot with child');
      this.snapshots.removeSync(key);
      if (info.parent) this.children.removeSync([this.snapshots.get(info.parent)!.id, info.id]);
      return info;
    });
  }

  /** Updates labels by field mask (`labels`, `labels.<k>`; none = replace all). */
  update(key: string, labels: Record<string, string>, paths: readonly string[]): SnapshotInfo {
    return this.env.transactionSync(() => {
      const current = this.stat(key);
      const next = applyLabelMask(current.labels, labels, paths, `snapshot ${goQuote(key)}`);
      validateLabels(next);
      const { key: _, ...rest } = current;
      const record: SnapshotRecord = { ...rest, labels: next, updatedAt: Date.now() };
      this.snapshots.putSync(key, record);
      return toInfo(key, record);
    });
  }

  /** Every snapshot, in key order, read from one consistent snapshot of the store. */
  *walk(): Iterable<SnapshotInfo> {
    for (const { key, value } of this.snapshots.getRange()) yield toInfo(key, value);
  }

  /** Ids that own a directory; anything else under the snapshots directory is garbage. */
  referencedIds(): Set<number> {
    const ids = new Set<number>();
    for (const { value } of this.snapshots.getRange()) ids.add(value.id);
    return ids;
  }

  private hasChildren(id: number): boolean {
    for (const _ of this.children.getKeys({ start: [id], end: [id + 1], limit: 1 })) return true;
    return false;
  }

  private ancestorIds(parent: string): number[] {
    const ids: number[] = [];
    for (let key = parent; key; ) {
      const record = this.snapshots.get(key);
      if (!record) throw new NotFoundError(`parent snapshot ${key} does not exist`);
      ids.push(record.id);
      key = record.parent;
    }
    return ids;
  }

  private allocateId(placement: Placement): number {
    let id = (this.counters.get('id') ?? 0) + 1;
    while (!placement.isFree(id)) id++;
    this.counters.putSync('id', id);
    return id;
  }
}

function checkKey(key: string, what: string): void {
  if (!key) throw new InvalidArgumentError(`snapshot ${what} must not be empty`);
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new InvalidArgumentError(`snapshot ${what} is longer than ${MAX_KEY_BYTES} bytes`);
  }
}

// msgpack may hand small 64-bit values back as numbers; usage stays bigint.
function toInfo(key: string, record: SnapshotRecord): SnapshotInfo {
  const info: SnapshotInfo = { key, ...record, labels: record.labels ?? {} };
  if (record.usage) info.usage = { size: BigInt(record.usage.size), inodes: BigInt(record.usage.inodes) };
  return info;
}
