import Long from 'long';
import type { protobuf } from '@boxd/api';

/** Milliseconds since the epoch of a protobuf Timestamp (0 when absent). */
export function millis(ts: protobuf.Timestamp | null | undefined): number {
  if (!ts) return 0;
  return Long.fromValue(ts.seconds).toNumber() * 1000 + Math.floor(ts.nanos / 1e6);
}
