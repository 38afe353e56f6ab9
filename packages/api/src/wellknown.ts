/** Helpers for google.protobuf.Timestamp and Any as the generated types see them. */
import Long from 'long';
import type { Init, MessageCodec } from './service.js';

export interface TimestampLike {
  seconds: Long | number | string;
  nanos: number;
}

export function timestampFromDate(date: Date = new Date()): { seconds: Long; nanos: number } {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds: Long.fromNumber(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** Nanosecond-exact timestamp from a bigint count of ns since the epoch. */
export function timestampFromNanos(nanos: bigint): { seconds: Long; nanos: number } {
  const seconds = nanos / 1_000_000_000n;
  const rest = Number(nanos - seconds * 1_000_000_000n);
  return { seconds: Long.fromString(seconds.toString()), nanos: rest };
}

export function dateFromTimestamp(ts: Init<TimestampLike> | null | undefined): Date | undefined {
  if (!ts) return undefined;
  const seconds = Long.fromValue((ts.seconds ?? 0) as Long | number | string).toNumber();
  return new Date(seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1_000_000));
}

/** Go's zero time (0001-01-01T00:00:00Z): what Go clients send for "unset". */
export const GO_ZERO_SECONDS = -62135596800;

export function isZeroTimestamp(ts: Init<TimestampLike> | null | undefined): boolean {
  if (!ts) return true;
  const seconds = Long.fromValue((ts.seconds ?? 0) as Long | number | string).toNumber();
  return (seconds === 0 && !ts.nanos) || seconds === GO_ZERO_SECONDS;
}

/** google.protobuf.Any; protobufjs keeps the proto field name `type_url` for this well-known type. */
export interface AnyLike {
  type_url: string;
  value: Uint8Array;
}

export function packAny<T>(typeUrl: string, codec: MessageCodec<T>, message: Init<T>): AnyLike {
  return { type_url: typeUrl, value: codec.encode(message) };
}

export function unpackAny<T>(any: AnyLike, codec: MessageCodec<T>): T {
  return codec.decode(any.value);
}

/** Any holding JSON, as containerd stores OCI specs. */
export function packJsonAny(typeUrl: string, value: unknown): AnyLike {
  return { type_url: typeUrl, value: Buffer.from(JSON.stringify(value)) };
}

export function unpackJsonAny<T = unknown>(any: Pick<AnyLike, 'value'>): T {
  return JSON.parse(Buffer.from(any.value).toString('utf8')) as T;
}

export const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
export const PROCESS_SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
export const RESOURCES_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';

/**
 * boxd.shim.v1 (see proto/boxd/shim/v1): the ttrpc header that makes a Task.Create
 * also ask to join the shim's group (value: the task's namespace), and the message a
 * shim declines such a Create with.
 */
export const SHIM_JOIN_HEADER = 'boxd-join';
export const SHIM_JOIN_DECLINED = 'task belongs to another shim group';
