/** An unbounded single-consumer queue bridging push events to pull reads. */
export class AsyncQueue<T> {
  private items: T[] = [];
  private waiting: Array<{ resolve: (v: T | undefined) => void; reject: (e: unknown) => void }> = [];
  private done = false;
  private error: unknown;

  push(item: T): void {
    const w = this.waiting.shift();
    if (w) w.resolve(item);
    else this.items.push(item);
  }

  end(): void {
    this.done = true;
    for (const w of this.waiting.splice(0)) w.resolve(undefined);
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.error = err;
    this.done = true;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  next(): Promise<T | undefined> {
    if (this.items.length) return Promise.resolve(this.items.shift());
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.done) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async *iterate(): AsyncGenerator<T> {
    for (;;) {
      const item = await this.next();
      if (item === undefined) return;
      yield item;
    }
  }
}
