export { EventBus, DEFAULT_SUBSCRIBER_BUFFER, parseSubscriptionFilters, type EventBusOptions, type SubscribeOptions, type BusStats } from './bus.js';
export type { Subscription } from './subscription.js';
export { forwardedEnvelope, publishedEnvelope, type Envelope } from './envelope.js';
export { envelopeAdaptor } from './event-fields.js';
export { eventsImplementation, ttrpcEventsImplementation } from './services.js';
export { eventsBusPlugin, setupEventsBus, parseEventsBusConfig, type EventsBusConfig, type EventsBusInstance } from './plugin.js';
export { createEventPublisher, createEventForwarder, packEvent, unpackEvent, type EventPublisher } from './publisher.js';
