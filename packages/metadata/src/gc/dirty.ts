/**
 * Which backends a collection has to sweep. Listing a backend costs a call per
 * object it holds, and a backend plugin that is stopped while idle would be
 * started just to answer; so, as upstream does, a scheduled collection sweeps
 * only the backends whose references may have changed since their last clean
 * sweep: the content store after a write to content records, blob holders or
 * ingests, a snapshotter after a write to its backend keys, retired snapshots or key
 * reservations.
 *
 * A clean sweep is recorded in the store (`cleanBackends`), and the first write
 * that dirties a backend removes that record in the same transaction: a
 * restarted plugin sweeps exactly what was dirty when it stopped, and a backend
 * never swept on this root (or whose sweep failed) counts as dirty. A store
 * made just now counts every backend clean, as upstream starts with nothing
 * dirty: it has referenced nothing yet, and what an earlier store left in a
 * backend goes with the first sweep after a write dirties that backend. (Else
 * the first collection on a new root would start every stopped snapshotter
 * just to list it.)
 */
import type { Database } from 'lmdb';

/** Tables whose writes may leave blobs or backend ingests unreferenced. */
const CONTENT_TABLES = new Set(['content', 'blobs', 'ingests']);
/** Tables keyed [snapshotter, …] that say which backend snapshots are referenced. */
const SNAPSHOT_TABLES = new Set(['backendKeys', 'retired', 'reservedKeys']);

/** The backends by name, as the store records them clean. */
export const CONTENT_BACKEND = 'content';
export const snapshotterBackend = (name: string) => `snapshotter/${name}`;

export class DirtyBackends {
  private readonly dirty = new Set<string>();

  constructor(
    /** backend → 1 once swept clean; written without change notices, nobody outside GC reads it. */
    private readonly clean: Database<1, string>,
    private readonly snapshotterNames: readonly string[],
    /** The store was made just now. */
    created: boolean,
  ) {
    const backends = [CONTENT_BACKEND, ...snapshotterNames.map(snapshotterBackend)];
    // One commit for them all: each is a synced write.
    if (created) clean.transactionSync(() => backends.forEach((backend) => clean.putSync(backend, 1)));
    else for (const backend of backends) if (clean.get(backend) === undefined) this.dirty.add(backend);
  }

  /** A write to `table` at `key` (none: the whole table), inside the transaction making it. */
  noteWrite(table: string, key: readonly string[] | undefined): void {
    if (CONTENT_TABLES.has(table)) this.markDirty(CONTENT_BACKEND);
    else if (SNAPSHOT_TABLES.has(table)) {
      const names = key?.[0] !== undefined ? [key[0]] : this.snapshotterNames;
      for (const name of names) this.markDirty(snapshotterBackend(name));
    }
  }

  /** Whether `backend` needs a sweep; it counts as clean from now on unless written again. */
  take(backend: string): boolean {
    return this.dirty.delete(backend);
  }

  /** The sweep of `backend` finished: clean, or dirty again if it left something or a write came meanwhile. */
  swept(backend: string, ok: boolean): void {
    if (!ok) this.markDirty(backend);
    else if (!this.dirty.has(backend)) this.clean.putSync(backend, 1);
  }

  private markDirty(backend: string): void {
    if (this.dirty.has(backend)) return;
    this.dirty.add(backend);
    this.clean.removeSync(backend);
  }
}
