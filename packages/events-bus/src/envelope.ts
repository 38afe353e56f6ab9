/**
 * Envelopes as the bus carries them, and the checks an envelope passes before
 * it is accepted: the same rules (and messages) as containerd's exchange.
 */
import Long from 'long';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  isZeroTimestamp,
  timestampFromNanos,
  validateIdentifier,
  validateTopic,
  type eventsService,
  type protobuf,
} from '@boxd/api';

/** The gRPC and the ttrpc Envelope messages have the same shape. */
export type Envelope = eventsService.Envelope;

/** Latest instant a google.protobuf.Timestamp may hold (9999-12-31T23:59:59Z). */
const MAX_TIMESTAMP_SECONDS = 253402300799;
const MIN_TIMESTAMP_SECONDS = -62135596800;

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function requireEvent(event: protobuf.Any | null | undefined): protobuf.Any {
  if (!event) throw new InvalidArgumentError('event must be set');
  return event;
}

/** Builds the envelope for a Publish call: namespace from the caller, time from the bus. */
export function publishedEnvelope(
  namespace: string | undefined,
  topic: string,
  event: protobuf.Any | null | undefined,
  now: bigint = nowNanos(),
): Envelope {
  if (!namespace) throw new FailedPreconditionError('failed publishing event: namespace is required');
  try {
    validateIdentifier(namespace);
  } catch (err) {
    throw new InvalidArgumentError(`failed publishing event: namespace validation: ${reason(err)}`, { cause: err });
  }
  validateTopic(topic);
  return { timestamp: timestampFromNanos(now), namespace, topic, event: requireEvent(event) };
}

/** Checks an envelope handed to Forward, which must arrive complete. */
export function forwardedEnvelope(envelope: Envelope | null | undefined): Envelope {
  if (!envelope) throw new InvalidArgumentError('envelope must be set on forwarded event');
  try {
    validateIdentifier(envelope.namespace);
  } catch (err) {
    throw new InvalidArgumentError(`event envelope has invalid namespace: ${reason(err)}`, { cause: err });
  }
  validateTopic(envelope.topic);
  const ts = envelope.timestamp;
  if (isZeroTimestamp(ts)) throw new InvalidArgumentError('timestamp must be set on forwarded event');
  const seconds = Long.fromValue(ts!.seconds);
  if (
    seconds.lessThan(MIN_TIMESTAMP_SECONDS) ||
    seconds.greaterThan(MAX_TIMESTAMP_SECONDS) ||
    ts!.nanos < 0 ||
    ts!.nanos >= 1_000_000_000
  ) {
    throw new InvalidArgumentError(`timestamp ${seconds.toString()}s ${ts!.nanos}ns of forwarded event is out of range`);
  }
  return { timestamp: ts, namespace: envelope.namespace, topic: envelope.topic, event: requireEvent(envelope.event) };
}

let lastStamp = 0n;

/**
 * Now, in ns since the epoch, for stamping published events: the wall clock
 * (so it follows clock adjustments like Go's time.Now) with the sub-ms part
 * from the high resolution clock. Stamps never repeat or go back, so their
 * order is the order events were accepted in.
 */
export function nowNanos(): bigint {
  const wall = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  lastStamp = wall > lastStamp ? wall : lastStamp + 1n;
  return lastStamp;
}
