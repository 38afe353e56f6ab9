/**
 * One subscriber's view of the bus: a bounded buffer the bus pushes into and
 * the subscriber pulls from. The bus never waits on a subscriber; a buffer
 * that fills up fails the subscription instead.
 */
import { ResourceExhaustedError, type Filter } from '@boxd/api';
import type { Envelope } from './envelope.js';

interface Waiter {
  resolve(result: IteratorResult<Envelope>): void;
  reject(err: unknown): void;
}

const DONE: IteratorResult<Envelope> = { done: true, value: undefined };

export class Subscription implements AsyncIterableIterator<Envelope> {
  private readonly slots: (Envelope | undefined)[];
  private head = 0;
  private count = 0;
  private waiter: Waiter | undefined;
  private finished = false;
  private failure: unknown;

  constructor(
    readonly id: number,
    readonly filter: Filter,
    readonly capacity: number,
    private readonly onFinish: (sub: Subscription) => void,
  ) {
    this.slots = new Array<Envelope | undefined>(capacity);
  }

  get closed(): boolean {
    return this.finished;
  }

  /** Events waiting to be pulled. */
  get buffered(): number {
    return this.count;
  }

  /**
   * Hands an event to the subscriber without waiting. Returns false (and fails
   * the subscription) when the buffer is full.
   */
  offer(envelope: Envelope): boolean {
    if (this.finished) return false;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter.resolve({ done: false, value: envelope });
      return true;
    }
    if (this.count === this.capacity) {
      this.fail(
        new ResourceExhaustedError(
          `events subscriber too slow: more than ${this.capacity} events waiting to be delivered, subscription dropped`,
        ),
      );
      return false;
    }
    this.slots[(this.head + this.count) % this.capacity] = envelope;
    this.count++;
    return true;
  }

  /** Ends the subscription with an error; undelivered events are discarded. */
  fail(err: unknown): void {
    if (this.finished) return;
    this.failure = err;
    this.discard();
    this.finish();
    this.waiter?.reject(err);
    this.waiter = undefined;
  }

  /** Ends the subscription normally once the buffered events are pulled. */
  close(): void {
    if (this.finished) return;
    this.finish();
    this.waiter?.resolve(DONE);
    this.waiter = undefined;
  }

  next(): Promise<IteratorResult<Envelope>> {
    if (this.count > 0) return Promise.resolve({ done: false, value: this.take() });
    if (this.failure !== undefined) {
      const err = this.failure;
      // Report the failure once; afterwards the iterator is simply done.
      this.failure = undefined;
      return Promise.reject(err);
    }
    if (this.finished) return Promise.resolve(DONE);
    if (this.waiter) return Promise.reject(new Error('Subscription.next() called concurrently'));
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** Breaking out of a for-await loop unsubscribes. */
  return(): Promise<IteratorResult<Envelope>> {
    this.discard();
    this.failure = undefined;
    this.close();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private take(): Envelope {
    const envelope = this.slots[this.head]!;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return envelope;
  }

  private discard(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  private finish(): void {
    this.finished = true;
    this.onFinish(this);
  }
}
