/** The Events services over a bus: the public API and the ttrpc endpoint for shims. */
import { eventsService, eventsTtrpc, namespaceOf, type ServiceImplementation } from '@boxd/api';
import { parseSubscriptionFilters, type EventBus } from './bus.js';
import { forwardedEnvelope, publishedEnvelope } from './envelope.js';

/** `containerd.services.events.v1.Events`. */
export function eventsImplementation(bus: EventBus): ServiceImplementation<typeof eventsService.EventsService> {
  return {
    Publish: (req, ctx) => {
      bus.publish(publishedEnvelope(namespaceOf(ctx), req.topic, req.event));
      return {};
    },
    Forward: (req) => {
      bus.publish(forwardedEnvelope(req.envelope));
      return {};
    },
    // Not an async generator: bad filters must fail the call before the
    // stream starts, and the subscription must exist once the call returns.
    Subscribe: (req, ctx) => bus.subscribe(parseSubscriptionFilters(req.filters), { signal: ctx.signal }),
  };
}

/** `containerd.services.events.ttrpc.v1.Events`: what shims call on the ttrpc socket. */
export function ttrpcEventsImplementation(bus: EventBus): ServiceImplementation<typeof eventsTtrpc.EventsService> {
  return {
    Forward: (req) => {
      bus.publish(forwardedEnvelope(req.envelope));
      return {};
    },
  };
}
