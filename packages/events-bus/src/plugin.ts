/** The events-bus plugin: one bus served as both Events services. */
import { eventsService, eventsTtrpc, InvalidArgumentError } from '@boxd/api';
import { service, type PluginContext, type PluginInstance, type PluginSpec } from '@boxd/plugin-kit';
import { DEFAULT_SUBSCRIBER_BUFFER, EventBus } from './bus.js';
import { eventsImplementation, ttrpcEventsImplementation } from './services.js';

export interface EventsBusConfig {
  /** Events buffered per subscriber before a slow subscriber is dropped. */
  subscriberBuffer: number;
}

/** Reads the plugin's TOML table: `subscriber_buffer = 1024`. */
export function parseEventsBusConfig(config: Record<string, unknown>): EventsBusConfig {
  const raw = config['subscriber_buffer'] ?? DEFAULT_SUBSCRIBER_BUFFER;
  const value = typeof raw === 'bigint' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`events-bus config: subscriber_buffer must be a positive integer, got ${JSON.stringify(String(raw))}`);
  }
  return { subscriberBuffer: value };
}

export interface EventsBusInstance extends PluginInstance {
  readonly bus: EventBus;
}

export function setupEventsBus(ctx: Pick<PluginContext, 'config' | 'logger'>): EventsBusInstance {
  const { subscriberBuffer } = parseEventsBusConfig(ctx.config);
  const bus = new EventBus({ subscriberBuffer, logger: ctx.logger });
  return {
    bus,
    services: [
      service(eventsService.EventsService, eventsImplementation(bus)),
      service(eventsTtrpc.EventsService, ttrpcEventsImplementation(bus)),
    ],
    stopping: () => bus.close(),
    close: () => bus.close(),
  };
}

export const eventsBusPlugin: PluginSpec = { name: 'events-bus', setup: setupEventsBus };
