/**
 * The exchange: every accepted envelope is offered to every subscription
 * whose filter matches it. Offering never waits, so a publisher is never held
 * up by a subscriber; a subscriber that falls too far behind is dropped.
 */
import { InvalidArgumentError, UnavailableError, parseFilters, type Filter } from '@boxd/api';
import type { Logger } from '@boxd/plugin-kit';
import { envelopeAdaptor } from './event-fields.js';
import type { Envelope } from './envelope.js';
import { Subscription } from './subscription.js';

export const DEFAULT_SUBSCRIBER_BUFFER = 1024;

export interface EventBusOptions {
  /** Events buffered per subscriber before it is dropped. */
  subscriberBuffer?: number;
  logger?: Logger;
}

export interface SubscribeOptions {
  /** Ends the subscription when aborted (the caller went away). */
  signal?: AbortSignal;
}

export interface BusStats {
  published: number;
  subscribers: number;
  dropped: number;
}

/** Parses Subscribe filters, reporting syntax errors as INVALID_ARGUMENT. */
export function parseSubscriptionFilters(filters: readonly string[] | null | undefined): Filter {
  try {
    return parseFilters(filters);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new InvalidArgumentError(`failed parsing subscription filters: ${reason}`, { cause: err });
  }
}

export class EventBus {
  private readonly subscriptions = new Set<Subscription>();
  /** Undoes what subscribe() hooked up (the abort listener) once a subscription ends. */
  private readonly onForget = new WeakMap<Subscription, () => void>();
  private readonly capacity: number;
  private readonly logger: Logger | undefined;
  private nextId = 1;
  private published = 0;
  private dropped = 0;
  private closed = false;

  constructor(options: EventBusOptions = {}) {
    this.capacity = options.subscriberBuffer ?? DEFAULT_SUBSCRIBER_BUFFER;
    if (!Number.isSafeInteger(this.capacity) || this.capacity < 1) {
      throw new InvalidArgumentError(`subscriber buffer must be a positive integer, got ${String(options.subscriberBuffer)}`);
    }
    this.logger = options.logger;
  }

  get stats(): BusStats {
    return { published: this.published, subscribers: this.subscriptions.size, dropped: this.dropped };
  }

  /** Accepts a validated envelope and hands it to every matching subscriber. */
  publish(envelope: Envelope): void {
    this.published++;
    this.logger?.debug({ topic: envelope.topic, ns: envelope.namespace, type: envelope.event?.type_url }, 'event accepted');
    if (this.subscriptions.size === 0) return;
    const fields = envelopeAdaptor(envelope);
    for (const sub of this.subscriptions) {
      if (!sub.filter.always && !sub.filter.match(fields)) continue;
      if (!sub.offer(envelope)) {
        this.dropped++;
        this.logger?.warn({ subscription: sub.id, buffer: sub.capacity }, 'dropped slow events subscriber');
      }
    }
  }

  subscribe(filter: Filter, options: SubscribeOptions = {}): Subscription {
    const sub = new Subscription(this.nextId++, filter, this.capacity, (s) => this.forget(s));
    if (this.closed) {
      sub.fail(new UnavailableError('events bus is shutting down'));
      return sub;
    }
    this.subscriptions.add(sub);
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) sub.close();
      else {
        const onAbort = () => sub.close();
        signal.addEventListener('abort', onAbort, { once: true });
        this.onForget.set(sub, () => signal.removeEventListener('abort', onAbort));
      }
    }
    this.logger?.debug({ subscription: sub.id, subscribers: this.subscriptions.size }, 'events subscriber added');
    return sub;
  }

  /**
   * Ends every subscription with UNAVAILABLE (a subscriber must not mistake
   * a shutdown for the end of the event stream) and accepts no new ones.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new UnavailableError('events bus is shutting down');
    for (const sub of [...this.subscriptions]) sub.fail(err);
  }

  private forget(sub: Subscription): void {
    if (!this.subscriptions.delete(sub)) return;
    this.onForget.get(sub)?.();
    this.onForget.delete(sub);
    this.logger?.debug({ subscription: sub.id }, 'events subscriber removed');
  }
}
