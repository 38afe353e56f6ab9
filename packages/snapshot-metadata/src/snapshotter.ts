/**
 * The snapshotter logic both boxd snapshotters share: metadata rules, the
 * life of snapshot directories, usage, cleanup. What differs between them
 * (how a directory is filled, which mounts it yields) is a SnapshotBackend.
 */
import { join } from 'node:path';
import { FailedPreconditionError, parseFilters, validateLabels, type FieldAdaptor, type types } from '@boxd/api';
import { SnapshotDirs } from './dirs.js';
import { Kind, kindName, type SnapshotInfo, type Usage } from './records.js';
import { SnapshotStore } from './store.js';

export type Mount = types.Mount;

export interface SnapshotBackend {
  /**
   * Lays out a new snapshot in `dir`, a build directory that becomes the
   * snapshot's own directory once the snapshot is recorded.
   * `parentDirs` are the ancestors' directories, nearest first.
   */
  populate(dir: string, kind: Kind, parentDirs: readonly string[]): Promise<void>;
  /** The mounts of an active snapshot or view living in `dir`. */
  mounts(kind: Kind, dir: string, parentDirs: readonly string[]): Mount[];
  /** Usage of what the snapshot in `dir` holds itself (its writable part). */
  usage(dir: string, signal?: AbortSignal): Promise<Usage>;
}

/** The part of a pino logger used here. */
export interface SnapshotLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SnapshotterOptions {
  /** Holds `metadata.lmdb` and `snapshots/<id>`. */
  root: string;
  backend: SnapshotBackend;
  logger?: SnapshotLogger;
}

const silent: SnapshotLogger = { debug() {}, warn() {} };

export class Snapshotter {
  private constructor(
    readonly store: SnapshotStore,
    readonly dirs: SnapshotDirs,
    private readonly backend: SnapshotBackend,
    private readonly logger: SnapshotLogger,
  ) {}

  static async open(options: SnapshotterOptions): Promise<Snapshotter> {
    const dirs = new SnapshotDirs(options.root);
    await dirs.init();
    const store = SnapshotStore.open(join(options.root, 'metadata.lmdb'));
    return new Snapshotter(store, dirs, options.backend, options.logger ?? silent);
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  prepare(key: string, parent = '', labels: Record<string, string> = {}): Promise<Mount[]> {
    return this.create(Kind.ACTIVE, key, parent, labels);
  }

  view(key: string, parent = '', labels: Record<string, string> = {}): Promise<Mount[]> {
    return this.create(Kind.VIEW, key, parent, labels);
  }

  mounts(key: string): Mount[] {
    const { info, parentIds } = this.store.chain(key);
    if (info.kind !== Kind.ACTIVE && info.kind !== Kind.VIEW) {
      throw new FailedPreconditionError(`requested snapshot ${key} not active or view`);
    }
    return this.backend.mounts(info.kind, this.dirs.dir(info.id), this.parentDirs(parentIds));
  }

  async commit(name: string, key: string, labels: Record<string, string> = {}, signal?: AbortSignal): Promise<SnapshotInfo> {
    // Fail before walking the tree; the transaction checks again.
    validateLabels(labels);
    const active = this.store.checkCommit(key, name);
    const usage = await this.backend.usage(this.dirs.dir(active.id), signal);
    const info = this.store.commit(key, name, labels, usage);
    this.logger.debug({ key, name, id: info.id }, 'committed snapshot');
    return info;
  }

  async remove(key: string): Promise<void> {
    const info = this.store.remove(key);
    this.logger.debug({ key, id: info.id }, 'removed snapshot');
    const dir = this.dirs.dir(info.id);
    try {
      await this.dirs.remove(dir);
    } catch (err) {
      // The snapshot is gone either way; Cleanup retries the directory.
      this.logger.warn({ err, dir }, 'failed to remove snapshot directory');
    }
  }

  stat(key: string): SnapshotInfo {
    return this.store.stat(key);
  }

  update(key: string, labels: Record<string, string>, paths: readonly string[]): SnapshotInfo {
    return this.store.update(key, labels, paths);
  }

  /** Snapshots matching containerd filters (OR of strings, AND within one). */
  *walk(filters: readonly string[] = []): Iterable<SnapshotInfo> {
    const filter = parseFilters(filters);
    for (const info of this.store.walk()) {
      if (filter.always || filter.match(snapshotFields(info))) yield info;
    }
  }

  /** Active snapshots are measured now; committed ones report the usage cached at commit; views hold nothing. */
  async usage(key: string, signal?: AbortSignal): Promise<Usage> {
    const info = this.store.stat(key);
    if (info.kind === Kind.ACTIVE) return this.backend.usage(this.dirs.dir(info.id), signal);
    return info.usage ?? { size: 0n, inodes: 0n };
  }

  /** Removes directories no snapshot owns (left by failed removals or crashes). */
  async cleanup(): Promise<string[]> {
    const garbage = await this.dirs.unreferenced(() => this.store.referencedIds());
    for (const dir of garbage) await this.dirs.remove(dir);
    if (garbage.length > 0) this.logger.debug({ removed: garbage }, 'cleanup');
    return garbage;
  }

  private async create(kind: Kind, key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    // Fail fast, before copying or creating anything; the transaction checks again.
    validateLabels(labels);
    const parentIds = this.store.checkCreate(key, parent);
    const building = this.dirs.startBuilding();
    try {
      await this.backend.populate(building, kind, this.parentDirs(parentIds));
      const { info, parentIds: ids } = this.store.create(kind, key, parent, labels, {
        isFree: (id) => this.dirs.isFree(id),
        place: (id) => this.dirs.place(building, id),
      });
      this.logger.debug({ key, parent, id: info.id, kind: kindName(kind) }, 'created snapshot');
      return this.backend.mounts(kind, this.dirs.dir(info.id), this.parentDirs(ids));
    } finally {
      await this.dirs.finish(building);
    }
  }

  private parentDirs(ids: readonly number[]): string[] {
    return ids.map((id) => this.dirs.dir(id));
  }
}

/** Filter fields of a snapshot, as containerd defines them: name and parent are always present. */
export function snapshotFields(info: SnapshotInfo): FieldAdaptor {
  return (fieldpath) => {
    switch (fieldpath[0]) {
      case 'kind':
        return kindName(info.kind);
      case 'name':
        return info.key;
      case 'parent':
        return info.parent;
      case 'labels': {
        const key = fieldpath.slice(1).join('.');
        return Object.hasOwn(info.labels, key) ? info.labels[key] : undefined;
      }
      default:
        return undefined;
    }
  };
}
