/**
 * Helpers for processes that publish to (or read from) a bus: events travel
 * as an Any whose type URL is the bare protobuf name of the event message,
 * as containerd sends them (`containerd.events.TaskExit`).
 */
import {
  codecFor,
  timestampFromNanos,
  type CallOptions,
  type eventsService,
  type Init,
  type MessageCodec,
  type protobuf,
} from '@boxd/api';
import { nowNanos } from './envelope.js';

/** Packs an event message into the Any containerd expects. */
export function packEvent<T>(codec: MessageCodec<T>, event: Init<T>): protobuf.Any {
  return { type_url: codec.typeName, value: codec.encode(event) };
}

/**
 * Decodes an event Any by its type URL, for subscribers. Undefined when the
 * type is unknown here (a newer peer's event) or the bytes do not decode.
 */
export function unpackEvent<T = Record<string, unknown>>(any: protobuf.Any | null | undefined): T | undefined {
  if (!any?.type_url) return undefined;
  try {
    return codecFor<T>(any.type_url).decode(any.value);
  } catch {
    return undefined;
  }
}

interface PublishClient {
  Publish(request: Init<eventsService.PublishRequest>, options?: CallOptions): Promise<unknown>;
}

interface ForwardClient {
  Forward(request: Init<eventsService.ForwardRequest>, options?: CallOptions): Promise<unknown>;
}

export interface EventPublisher {
  /** Publishes `event` on `topic` in `namespace`; the bus stamps the time. */
  publish<T>(namespace: string, topic: string, codec: MessageCodec<T>, event: Init<T>, options?: CallOptions): Promise<void>;
}

/**
 * Publishes through an Events client (gRPC or ttrpc) with `Publish`: what the
 * core and plugins use for /namespaces/*, /images/*, /containers/*,
 * /snapshot/*, /content/delete.
 */
export function createEventPublisher(client: PublishClient): EventPublisher {
  return {
    async publish(namespace, topic, codec, event, options) {
      await client.Publish({ topic, event: packEvent(codec, event) }, { ...options, namespace });
    },
  };
}

/**
 * Publishes through `Forward` with a complete envelope stamped here, as a shim
 * does over ttrpc (`containerd.services.events.ttrpc.v1.Events`).
 */
export function createEventForwarder(client: ForwardClient): EventPublisher {
  return {
    async publish(namespace, topic, codec, event, options) {
      const envelope = { timestamp: timestampFromNanos(nowNanos()), namespace, topic, event: packEvent(codec, event) };
      await client.Forward({ envelope }, { ...options, namespace });
    },
  };
}
