/**
 * One writer per ingest ref. A second writer waits briefly (a client that
 * reconnects right after dropping its stream races the server noticing the
 * drop), then gets UNAVAILABLE, which clients retry with backoff.
 */
import { UnavailableError } from '@boxd/api';

export interface LockHolder {
  /** Called when the ingest is aborted under the holder's feet. */
  invalidate(): Promise<void>;
  /** Called when the store closes with the holder still active. */
  close(): Promise<void>;
  /** Resolves once the holder's accepted bytes are in its file. */
  settle(): Promise<void>;
}

interface Lock {
  since: Date;
  holder?: LockHolder;
}

const RETRIES = 8;

export class RefLocks {
  private readonly locks = new Map<string, Lock>();

  async acquire(ref: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const lock = this.locks.get(ref);
      if (!lock) {
        this.locks.set(ref, { since: new Date() });
        return;
      }
      if (attempt >= RETRIES) {
        const heldMs = Date.now() - lock.since.getTime();
        throw new UnavailableError(`ref ${ref} locked for ${heldMs}ms (since ${lock.since.toISOString()})`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * (1 << attempt)));
    }
  }

  setHolder(ref: string, holder: LockHolder): void {
    const lock = this.locks.get(ref);
    if (lock) lock.holder = holder;
  }

  holder(ref: string): LockHolder | undefined {
    return this.locks.get(ref)?.holder;
  }

  /** With a holder, releases only that holder's lock (a lock may have changed hands after an abort). */
  release(ref: string, holder?: LockHolder): void {
    if (holder && this.locks.get(ref)?.holder !== holder) return;
    this.locks.delete(ref);
  }

  holders(): LockHolder[] {
    return [...this.locks.values()].flatMap((lock) => (lock.holder ? [lock.holder] : []));
  }
}
