/** The public Events API: the events bus does it all; Publish needs the caller's namespace. */
import { eventsService, eventsTtrpc, type ServiceClient, type ServiceImplementation } from '@boxd/api';
import { forwardOptions, forwardService, requireNamespace } from '../forward.js';

type Bus = ServiceClient<typeof eventsService.EventsService>;

export function eventsPublicService(bus: () => Bus): ServiceImplementation<typeof eventsService.EventsService> {
  const forwarded = forwardService(eventsService.EventsService, bus);
  return {
    ...forwarded,
    Publish: (req, ctx) => {
      requireNamespace(ctx);
      return bus().Publish(req, forwardOptions(ctx));
    },
  };
}

/** The ttrpc Forward endpoint shims publish to. */
export function eventsShimService(bus: () => Bus): ServiceImplementation<typeof eventsTtrpc.EventsService> {
  return {
    Forward: (req, ctx) => bus().Forward({ envelope: req.envelope }, forwardOptions(ctx)),
  };
}
