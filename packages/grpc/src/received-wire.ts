/**
 * The bytes a served streamed request was decoded from, kept beside the decoded
 * message so a relay can forward them as they are (no re-encode, no copy of
 * a large payload). Non-enumerable: a copy of the message, which may differ,
 * does not carry them.
 */
const WIRE = Symbol.for('@boxd/grpc.receivedWire');

export function keepReceivedWire<T>(message: T, bytes: Buffer): T {
  if (typeof message === 'object' && message !== null && !(message instanceof Uint8Array)) {
    Object.defineProperty(message, WIRE, { value: bytes, enumerable: false, configurable: true });
  }
  return message;
}

/** The wire bytes of a streamed request as received, if it came in over gRPC unchanged. */
export function receivedWire(message: unknown): Buffer | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  return (message as Record<symbol, Buffer | undefined>)[WIRE];
}
