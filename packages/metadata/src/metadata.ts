/**
 * State shared by every service of the plugin: the stores, the clock, the
 * write path and the hooks into garbage collection.
 */
import { NotFoundError } from '@boxd/api';
import type { Stores } from './store/db.js';
import type { Scope } from './context.js';
import { BlobGuard } from './gc/blob-guard.js';
import { addWrite, ChangeFeed, rowKeyOf, type Writes } from './changes.js';

export type LeaseResourceType = 'content' | 'ingests' | `snapshots/${string}`;

export interface GcHooks {
  /** A deletion happened: collect soon (debounced). */
  schedule(): void;
  /** Collect now and wait for it. */
  collect(): Promise<unknown>;
  /** A table was written (row `key`, or the whole table), inside the transaction writing it. */
  noteWrite(table: string, key: readonly string[] | undefined): void;
}

export class Metadata {
  gc: GcHooks = { schedule: () => undefined, collect: async () => undefined, noteWrite: () => undefined };
  readonly blobGuard = new BlobGuard();
  readonly changes = new ChangeFeed();
  private writeDepth = 0;
  private written: Writes = new Map();

  constructor(
    readonly stores: Stores,
    readonly now: () => number = Date.now,
  ) {}

  /**
   * Run `fn` as one atomic write transaction; a throw rolls everything back.
   * Watchers hear of it once the outermost transaction has committed, never
   * before its writes are visible.
   */
  write<T>(fn: () => T): T {
    this.writeDepth++;
    try {
      return this.stores.root.transactionSync(fn);
    } finally {
      if (--this.writeDepth === 0) this.publishWrites();
    }
  }

  /**
   * The stores wrote the row `key` of `table` (no key: the whole table); outside a
   * transaction that write has already committed.
   */
  noteWrite(table: string, key?: unknown): void {
    const row = rowKeyOf(key);
    this.gc.noteWrite(table, row);
    addWrite(this.written, table, row);
    if (this.writeDepth === 0) this.publishWrites();
  }

  private publishWrites(): void {
    if (this.written.size === 0) return;
    const writes = this.written;
    this.written = new Map();
    this.changes.changed(writes);
  }

  /** Any write in a namespace creates it (no event, as upstream). Call inside write(). */
  touchNamespace(ns: string): void {
    if (this.stores.namespaces.get(ns)) return;
    this.stores.namespaces.putSync(ns, { labels: {}, createdAt: this.now() });
  }

  /** Attach a resource to the caller's lease, if it has one. Call inside write(). */
  attachToLease(scope: Scope, type: LeaseResourceType, id: string): void {
    if (!scope.lease) return;
    if (!this.stores.leases.get([scope.ns, scope.lease])) throw new NotFoundError('lease does not exist');
    this.stores.leaseResources.putSync([scope.ns, scope.lease, type, id], 1);
  }
}
