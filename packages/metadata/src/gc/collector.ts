/**
 * Runs collections: one at a time, on demand or debounced after deletions.
 * A request made while one runs is served by the next run, so every caller
 * sees a collection that started after its own change. Backends are swept
 * only when dirty (see dirty.ts), except by an explicit GC.Collect.
 */
import type { Logger } from '@boxd/plugin-kit';
import type { Metadata } from '../metadata.js';
import type { Backends } from '../backends/clients.js';
import { sweepRecords, type SweepStats } from './sweep.js';
import { emptyBackendStats, sweepContent, sweepSnapshotter, type BackendStats } from './backend-sweep.js';
import { CONTENT_BACKEND, DirtyBackends, snapshotterBackend } from './dirty.js';

export interface CollectStats extends SweepStats, BackendStats {
  durationNs: bigint;
}

export interface CollectorOptions {
  /** Quiet time after the last deletion before the collection it triggers. */
  delayMs: number;
  /** Longest a scheduled collection waits while deletions keep coming. */
  maxDelayMs: number;
  retiredGraceMs: number;
  reservationTtlMs: number;
}

export class Collector {
  private running: Promise<CollectStats> | undefined;
  private next: Promise<CollectStats> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When the first deletion not yet collected asked for a collection. */
  private pendingSince: number | undefined;
  private closed = false;
  private readonly dirty: DirtyBackends;
  /** Set by a full collection asked for while one runs: the next run sweeps everything. */
  private nextFull = false;

  constructor(
    private readonly meta: Metadata,
    private readonly backends: Backends,
    private readonly options: CollectorOptions,
    private readonly logger: Logger,
  ) {
    this.dirty = new DirtyBackends(meta.stores.cleanBackends, [...backends.snapshotters.keys()], meta.stores.created);
  }

  /** A write to the store, inside its transaction: it may leave a backend something to collect. */
  noteWrite(table: string, key: readonly string[] | undefined): void {
    this.dirty.noteWrite(table, key);
  }

  /**
   * A collection soon: once deletions pause for `delayMs`, or at the latest `maxDelayMs`
   * after the first. A burst of commands (each `ctr run` deletes a lease, each `--rm` a
   * container) is collected once, after it, not in the middle of the next command.
   */
  schedule(): void {
    if (this.closed) return;
    const now = Date.now();
    this.pendingSince ??= now;
    clearTimeout(this.timer);
    const wait = Math.min(this.options.delayMs, this.pendingSince + this.options.maxDelayMs - now);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pendingSince = undefined;
      this.collect().catch((err) => this.logger.error({ err }, 'scheduled garbage collection failed'));
    }, Math.max(0, wait));
  }

  /** A collection that started after this call; `full` sweeps every backend, dirty or not. */
  collect(options: { full?: boolean } = {}): Promise<CollectStats> {
    if (!this.running) {
      const full = options.full === true || this.nextFull;
      this.nextFull = false;
      this.running = this.run(full).finally(() => (this.running = undefined));
      return this.running;
    }
    if (options.full) this.nextFull = true;
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.collect();
      });
    return this.next;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.allSettled([this.running, this.next]);
  }

  private async run(full: boolean): Promise<CollectStats> {
    const started = process.hrtime.bigint();
    const { stores } = this.meta;
    // Its writes mark the backends it leaves holding unreferenced objects dirty.
    const records = this.meta.write(() => sweepRecords(stores, { now: this.meta.now(), retiredGraceMs: this.options.retiredGraceMs, reservationTtlMs: this.options.reservationTtlMs }));
    const sweeps: Promise<BackendStats>[] = [];
    const content = this.backends.content;
    if (content && (this.dirty.take(CONTENT_BACKEND) || full)) {
      sweeps.push(this.guard('content', CONTENT_BACKEND, (out) => sweepContent(stores, content, this.meta.blobGuard, out)));
    }
    for (const [name, snapshotter] of this.backends.snapshotters) {
      const id = snapshotterBackend(name);
      if (!this.dirty.take(id) && !full) continue;
      sweeps.push(this.guard(`snapshotter ${name}`, id, (out) => sweepSnapshotter(stores, name, snapshotter, out)));
    }
    const backend = emptyBackendStats();
    for (const swept of await Promise.all(sweeps)) {
      backend.blobsDeleted += swept.blobsDeleted;
      backend.ingestsAborted += swept.ingestsAborted;
      backend.snapshotsRemoved += swept.snapshotsRemoved;
      backend.errors.push(...swept.errors);
    }
    const stats: CollectStats = { ...records, ...backend, durationNs: process.hrtime.bigint() - started };
    if (backend.errors.length > 0) this.logger.warn({ errors: backend.errors }, 'garbage collection left some backend objects');
    this.logger.debug({ ...stats, durationNs: stats.durationNs.toString() }, 'garbage collected');
    return stats;
  }

  /** A backend that is down must not fail the collection: it stays dirty and the next one retries. */
  private async guard(what: string, backend: string, sweep: (stats: BackendStats) => Promise<void>): Promise<BackendStats> {
    const stats = emptyBackendStats();
    try {
      await sweep(stats);
    } catch (err) {
      stats.errors.push(`${what}: ${(err as Error).message}`);
    }
    this.dirty.swept(backend, stats.errors.length === 0);
    return stats;
  }
}
