/** Conversions between stored records and protobuf messages. */
import Long from 'long';
import { InvalidArgumentError, timestampFromDate, validateLabels } from '@boxd/api';
import type { AnyRecord } from './store/records.js';

export function timestamp(ms: number) {
  return timestampFromDate(new Date(ms));
}

export function toLong(value: bigint): Long {
  return Long.fromString(value.toString());
}

export function toBigInt(value: Long | number | string | bigint | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'object') return BigInt(value.toString());
  return BigInt(value);
}

export function copyLabels(labels: Record<string, string> | null | undefined): Record<string, string> {
  // Empty values mean "unset", as in containerd's label buckets.
  return Object.fromEntries(Object.entries(labels ?? {}).filter(([, v]) => v !== ''));
}

interface AnyMessage {
  type_url?: string | null;
  typeUrl?: string | null;
  value?: Uint8Array | null;
}

export function anyRecord(any: AnyMessage | null | undefined): AnyRecord | undefined {
  if (!any) return undefined;
  return { typeUrl: any.type_url ?? any.typeUrl ?? '', value: Uint8Array.from(any.value ?? []) };
}

export function anyMessage(any: AnyRecord | undefined) {
  return any ? { type_url: any.typeUrl, value: any.value } : null;
}

const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** The go-digest rules: known algorithm, lowercase hex of the right length. */
export function digestError(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  if (colon <= 0 || colon === digest.length - 1) return 'invalid checksum digest format';
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) return 'unsupported digest algorithm';
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) return 'invalid checksum digest length';
  return undefined;
}

export function validateDigest(digest: string, what = 'digest'): string {
  const problem = digestError(digest);
  if (problem) throw new InvalidArgumentError(`${what} ${JSON.stringify(digest)} invalid: ${problem}`);
  return digest;
}

/** Labels checked as upstream reports them: prefixed with the field they came in (`image.Labels: ...`). */
export function checkLabels(field: string, labels: Record<string, string>): void {
  try {
    validateLabels(labels);
  } catch (err) {
    throw new InvalidArgumentError(`${field}: ${(err as Error).message}`);
  }
}
