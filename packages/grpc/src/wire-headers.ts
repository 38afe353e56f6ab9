/** What gRPC carries in HTTP/2 headers: call metadata, the deadline, the status message. */
import type { Metadata } from '@boxd/api';
import type { RequestHeaders } from './http2/stream.js';

/** Headers of the protocol itself, not the caller's metadata. */
const PROTOCOL_HEADERS = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding']);

export function metadataFromHeaders(headers: RequestHeaders): Metadata {
  const out: Metadata = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || key.startsWith(':') || PROTOCOL_HEADERS.has(key) || key.endsWith('-bin')) continue;
    out[key] = Array.isArray(value) ? value : [value];
  }
  return out;
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout ("100m", "5S", ...) in milliseconds; undefined when absent or malformed. */
export function timeoutMs(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const match = text ? /^(\d{1,8})([HMSmun])$/.exec(text) : null;
  return match ? Number(match[1]) * UNIT_MS[match[2]!]! : undefined;
}

/** grpc-message: printable ASCII as is, everything else (and '%') as %XX of its UTF-8 bytes. */
export function encodeStatusMessage(text: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(text)) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
