/**
 * Closes the race between GC deleting an unreferenced blob from the content
 * store and a writer that is about to reference the same digest.
 *
 * GC checks "unreferenced" and calls begin() in one synchronous step, so any
 * reference recorded after that waits here until the delete is done.
 */
export class BlobGuard {
  private readonly inFlight = new Map<string, { done: Promise<void>; deleted: boolean }>();

  begin(digest: string): (deleted: boolean) => void {
    let finish!: () => void;
    const entry = { done: new Promise<void>((resolve) => (finish = resolve)), deleted: false };
    this.inFlight.set(digest, entry);
    return (deleted) => {
      entry.deleted = deleted;
      this.inFlight.delete(digest);
      finish();
    };
  }

  busy(digest: string): boolean {
    return this.inFlight.has(digest);
  }

  /**
   * Runs `record` once no delete of `digest` is in flight, in the same
   * synchronous step as that check, so GC cannot claim the digest in between.
   * Answers whether a delete removed the blob while we waited.
   */
  async whenSettled<T>(digest: string, record: (deletedMeanwhile: boolean) => T): Promise<T> {
    let deleted = false;
    for (;;) {
      deleted = (await this.settle(digest)) || deleted;
      if (!this.busy(digest)) return record(deleted);
    }
  }

  /** Waits for a delete of `digest` in flight; true if it removed the blob. */
  async settle(digest: string): Promise<boolean> {
    let deleted = false;
    for (let entry = this.inFlight.get(digest); entry; entry = this.inFlight.get(digest)) {
      await entry.done;
      deleted ||= entry.deleted;
    }
    return deleted;
  }
}
