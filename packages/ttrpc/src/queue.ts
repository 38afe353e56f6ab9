/**
 * Per-stream receive queue. It never grows past its bounds: when full it
 * pauses reading the whole connection (as released containerd/ttrpc 1.2 does)
 * and resumes once the consumer catches up.
 */

export interface FlowControl {
  pauseRead(): void;
  resumeRead(): void;
}

interface Waiter {
  resolve(value: Buffer | undefined): void;
  reject(err: unknown): void;
}

export class RecvQueue {
  private items: Buffer[] = [];
  private bytes = 0;
  private waiters: Waiter[] = [];
  private ended = false;
  private error: unknown = undefined;
  private pausing = false;

  constructor(
    private readonly flow: FlowControl,
    private readonly maxItems: number,
    private readonly maxBytes: number,
  ) {}

  get isEnded(): boolean {
    return this.ended;
  }

  push(item: Buffer): void {
    if (this.ended) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve(item);
      return;
    }
    this.items.push(item);
    this.bytes += item.length;
    if (!this.pausing && (this.items.length >= this.maxItems || this.bytes >= this.maxBytes)) {
      this.pausing = true;
      this.flow.pauseRead();
    }
  }

  /** No more items; those queued are still delivered, then `err` (if any). */
  end(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = err;
    if (this.items.length === 0) this.settleWaiters();
  }

  /** Ends at once, dropping anything queued. */
  abort(err: unknown): void {
    this.items = [];
    this.bytes = 0;
    this.release();
    if (this.ended) {
      if (this.error === undefined) this.error = err;
    } else {
      this.ended = true;
      this.error = err;
    }
    this.settleWaiters();
  }

  next(): Promise<Buffer | undefined> {
    if (this.items.length > 0) {
      const item = this.items.shift()!;
      this.bytes -= item.length;
      if (this.pausing && this.items.length < this.maxItems && this.bytes < this.maxBytes) this.release();
      return Promise.resolve(item);
    }
    if (this.ended) return this.error === undefined ? Promise.resolve(undefined) : Promise.reject(this.error);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(): void {
    if (!this.pausing) return;
    this.pausing = false;
    this.flow.resumeRead();
  }

  private settleWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (this.error === undefined) w.resolve(undefined);
      else w.reject(this.error);
    }
  }
}
