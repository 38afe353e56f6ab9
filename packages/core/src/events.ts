/** Publishing the events upstream publishes, through the events bus. */
import { eventsService, type Init, type MessageCodec, type ServiceClient } from '@boxd/api';
import type { Logger } from 'pino';

export class EventPublisher {
  constructor(
    /** The bus, or undefined while an event would reach no one. */
    private readonly bus: () => ServiceClient<typeof eventsService.EventsService> | undefined,
    private readonly logger: Logger,
  ) {}

  /** Whether a published event would reach a bus: when not, a caller can skip building it. */
  get wanted(): boolean {
    return this.bus() !== undefined;
  }

  /**
   * Fire and forget: a missing or slow bus never fails the API call. The event goes
   * out on the next turn of the event loop, after the answer of the call that
   * published it; events published in one turn keep their order.
   */
  publish<T>(namespace: string, topic: string, codec: MessageCodec<T>, event: Init<T>): void {
    const bus = this.bus();
    if (!bus) return;
    const value = codec.encode(event);
    setImmediate(() =>
      bus
        .Publish({ topic, event: { type_url: codec.typeName, value } }, { namespace, timeoutMs: 5000 })
        .catch((err: unknown) => this.logger.warn({ err, topic, namespace }, 'event not published')),
    );
  }
}
