/**
 * Messages a caller already holds in wire form, possibly in pieces: a relay
 * forwards the bytes it received plus a field appended to override one (the
 * last occurrence of a field wins in protobuf). Stream sends write the pieces
 * as they are, with no encode and no copy of a large payload; any other
 * transport sees an ordinary message object and encodes it.
 *
 * The pieces sit in a non-enumerable property, so a copy of the message
 * (`{ ...message, x }`) is an ordinary message again and cannot go out with
 * bytes that no longer match it.
 */
const PARTS = Symbol.for('@boxd/ttrpc.wireParts');

/** `message`, marked to be sent as `parts` concatenated (which must encode exactly it). */
export function withWireParts<T extends object>(message: T, parts: readonly Uint8Array[]): T {
  Object.defineProperty(message, PARTS, { value: parts, enumerable: false, configurable: true });
  return message;
}

export function wirePartsOf(message: unknown): readonly Uint8Array[] | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  return (message as Record<symbol, readonly Uint8Array[] | undefined>)[PARTS];
}

export type FrameData = Uint8Array | readonly Uint8Array[];

export function frameDataLength(data: FrameData): number {
  if (data instanceof Uint8Array) return data.length;
  let n = 0;
  for (const part of data) n += part.length;
  return n;
}
