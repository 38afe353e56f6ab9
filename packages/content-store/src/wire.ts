/** Conversions between the store's values and the Content API's messages. */
import { timestampFromNanos, type content, type Init } from '@boxd/api';
import type { IngestStatus } from './ingest-writer.js';
import type { ContentInfo } from './store.js';

/** A protobuf int64 (a Long, or a number/decimal string) as an exact bigint. */
export function toBigInt(value: { toString(): string } | number | string | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  return BigInt(value.toString());
}

export function infoMessage(info: ContentInfo): Init<content.Info> {
  return {
    digest: info.digest,
    size: info.size.toString(),
    createdAt: timestampFromNanos(info.createdAt),
    updatedAt: timestampFromNanos(info.updatedAt),
    labels: info.labels,
  };
}

export function statusMessage(status: IngestStatus): Init<content.Status> {
  return {
    ref: status.ref,
    offset: status.offset.toString(),
    total: status.total.toString(),
    expected: status.expected,
    startedAt: timestampFromNanos(status.startedAt),
    updatedAt: timestampFromNanos(status.updatedAt),
  };
}
