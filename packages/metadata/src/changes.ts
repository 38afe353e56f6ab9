/**
 * The store's generation, raised by every committed write transaction, and the
 * watchers waiting for it to move. Each watcher collects the tables written
 * since it last looked, so one notice may stand for several commits.
 */
export class ChangeFeed {
  private current = 0;
  private readonly watchers = new Set<Watcher>();
  private closed = false;

  get generation(): number {
    return this.current;
  }

  /** A write transaction that wrote `tables` committed. */
  changed(tables: Iterable<string>): void {
    this.current++;
    for (const w of this.watchers) w.note(tables);
  }

  /** Watches open now. */
  get watching(): number {
    return this.watchers.size;
  }

  watch(): Watcher {
    const w = new Watcher(this.closed, () => this.watchers.delete(w));
    this.watchers.add(w);
    return w;
  }

  /** Ends every watch: the plugin is stopping, and an open stream would hold up its drain. */
  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.end();
  }
}

export class Watcher {
  private pending = new Set<string>();
  private wake?: () => void;

  constructor(
    private ended: boolean,
    /** Stop collecting: the watch is over. */
    readonly close: () => void,
  ) {}

  note(tables: Iterable<string>): void {
    for (const t of tables) this.pending.add(t);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** The tables written since the last call, once there are any; undefined once the watch ends or `signal` aborts. */
  async next(signal: AbortSignal): Promise<string[] | undefined> {
    while (this.pending.size === 0 && !this.ended && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (this.ended || signal.aborted) return undefined;
    const tables = [...this.pending];
    this.pending = new Set();
    return tables;
  }
}
