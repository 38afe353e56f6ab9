/**
 * Reads the read cache makes on its own, right after a write: `ctr run` creates a
 * container and asks for it back a moment later, prepares a snapshot and then asks
 * for its mounts. A read made before the write's own change notice has come would be
 * dropped by that notice, so the read goes out once the notice naming the written row
 * is in (at once, if it came before the write's answer). It is an ordinary read: its
 * answer is kept only by the cache's usual rules.
 */
/** Makes the read (the cache decides whether its answer is kept). */
export type MakeRead = () => void;

/** How long a write waits for its notice before its prefetch is given up. */
const WAIT_MS = 1_000;
/** Prefetches waiting at most; the oldest go first. */
const MAX_WAITING = 256;

export class Prefetches {
  /** Row → the read to make when its notice comes. */
  private readonly waiting = new Map<string, { read: MakeRead; until: number }>();
  /** Rows a notice named while a write to them was under way. */
  private readonly noticed = new Set<string>();

  /** A notice named `row`; `writing` tells whether a write to it is under way. */
  notice(row: string, writing: boolean): void {
    if (writing) this.noticed.add(row);
    const entry = this.waiting.get(row);
    if (!entry) return;
    this.waiting.delete(row);
    if (entry.until >= Date.now()) entry.read();
  }

  /** A write to `row` answered; `read` is what to read back (none when the write failed). */
  written(row: string, read: MakeRead | undefined): void {
    const noticed = this.noticed.delete(row);
    if (!read) return;
    if (noticed) {
      read();
      return;
    }
    this.waiting.delete(row);
    this.waiting.set(row, { read, until: Date.now() + WAIT_MS });
    if (this.waiting.size > MAX_WAITING) this.waiting.delete(this.waiting.keys().next().value!);
  }

  /** Notices stopped (the connection went): nothing waiting will be named. */
  clear(): void {
    this.waiting.clear();
    this.noticed.clear();
  }
}
