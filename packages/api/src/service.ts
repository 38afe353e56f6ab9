/**
 * One service definition, served and called over any transport.
 *
 * A definition names the protobuf service and, per method, the message codecs
 * and the streaming shape. Transports (ttrpc, gRPC) take a definition plus a
 * `ServiceImplementation` to serve it, or build a `ServiceClient` to call it.
 */
import type Long from 'long';

export interface MessageCodec<T> {
  readonly typeName: string;
  encode(message: Init<T>): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export interface MethodDefinition<Req = unknown, Res = unknown, CS extends boolean = boolean, SS extends boolean = boolean> {
  readonly name: string;
  /** gRPC path: `/package.Service/Method`. */
  readonly path: string;
  readonly requestType: MessageCodec<Req>;
  readonly responseType: MessageCodec<Res>;
  readonly requestStream: CS;
  readonly responseStream: SS;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMethod = MethodDefinition<any, any, boolean, boolean>;

export interface ServiceDefinition<M extends Record<string, AnyMethod> = Record<string, AnyMethod>> {
  /** Fully qualified protobuf service name, e.g. `containerd.task.v2.Task`. */
  readonly name: string;
  readonly methods: M;
}

/**
 * What a caller may pass for a message: every field optional, 64-bit fields
 * as Long, number (safe integers only) or decimal string.
 */
export type Init<T> = T extends Long
  ? Long | number | string
  : T extends Uint8Array
    ? Uint8Array
    : T extends (infer U)[]
      ? Init<U>[]
      : T extends object
        ? { [K in keyof T]?: Init<T[K]> | null }
        : T;

/** Metadata: lowercase keys, possibly several values per key. */
export type Metadata = Record<string, string[]>;

export interface CallContext {
  readonly metadata: Metadata;
  /** Aborted when the caller goes away, the deadline passes, or the server stops. */
  readonly signal: AbortSignal;
  /** Absolute deadline in ms since the epoch, if the caller set one. */
  readonly deadline?: number;
  readonly transport: 'ttrpc' | 'grpc' | 'in-process';
}

const ENCODED = Symbol.for('@boxd/api.EncodedMessage');

/**
 * A response a handler already holds in wire form (say, records kept
 * pre-encoded): transports send the bytes as they are instead of encoding.
 */
export interface EncodedMessage {
  readonly [ENCODED]: true;
  readonly bytes: Uint8Array;
}

export function encodedMessage(bytes: Uint8Array): EncodedMessage {
  return { [ENCODED]: true, bytes };
}

export function isEncodedMessage(value: unknown): value is EncodedMessage {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[ENCODED] === true;
}

/** Encode a handler's result: an EncodedMessage passes through, nothing means the empty message. */
export function encodeResponse<T>(codec: MessageCodec<T>, value: Init<T> | EncodedMessage | null | undefined): Uint8Array {
  if (isEncodedMessage(value)) return value.bytes;
  return codec.encode((value ?? {}) as Init<T>);
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Init<Res> | EncodedMessage> | Init<Res> | EncodedMessage;
export type ServerStreamHandler<Req, Res> = (request: Req, ctx: CallContext) => AsyncIterable<Init<Res>>;
export type ClientStreamHandler<Req, Res> = (requests: AsyncIterable<Req>, ctx: CallContext) => Promise<Init<Res>>;
export type BidiStreamHandler<Req, Res> = (requests: AsyncIterable<Req>, ctx: CallContext) => AsyncIterable<Init<Res>>;

export type Handler<M> =
  M extends MethodDefinition<infer Req, infer Res, infer CS, infer SS>
    ? CS extends true
      ? SS extends true
        ? BidiStreamHandler<Req, Res>
        : ClientStreamHandler<Req, Res>
      : SS extends true
        ? ServerStreamHandler<Req, Res>
        : UnaryHandler<Req, Res>
    : never;

export type ServiceImplementation<S extends ServiceDefinition> = {
  [K in keyof S['methods']]: Handler<S['methods'][K]>;
};

export interface CallOptions {
  metadata?: Record<string, string | string[]>;
  /** containerd namespace; sent under the transport's own header key. */
  namespace?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The client half of a client-streaming call. */
export interface ClientStreamCall<Req, Res> {
  send(message: Init<Req>): Promise<void>;
  /** Half-closes and waits for the single response. */
  finish(): Promise<Res>;
  cancel(): void;
}

/** The client half of a bidirectional call; iterate it to receive. */
export interface BidiStreamCall<Req, Res> extends AsyncIterable<Res> {
  send(message: Init<Req>): Promise<void>;
  /** Half-closes the sending side. */
  end(): Promise<void>;
  /** Next response, or undefined once the server has ended the stream. */
  recv(): Promise<Res | undefined>;
  cancel(): void;
}

export type ClientMethod<M> =
  M extends MethodDefinition<infer Req, infer Res, infer CS, infer SS>
    ? CS extends true
      ? SS extends true
        ? (options?: CallOptions) => BidiStreamCall<Req, Res>
        : (options?: CallOptions) => ClientStreamCall<Req, Res>
      : SS extends true
        ? (request: Init<Req>, options?: CallOptions) => AsyncIterable<Res>
        : (request: Init<Req>, options?: CallOptions) => Promise<Res>
    : never;

export type ServiceClient<S extends ServiceDefinition> = {
  [K in keyof S['methods']]: ClientMethod<S['methods'][K]>;
};

export type MethodShape = 'unary' | 'server-stream' | 'client-stream' | 'bidi';

export function methodShape(method: AnyMethod): MethodShape {
  if (method.requestStream) return method.responseStream ? 'bidi' : 'client-stream';
  return method.responseStream ? 'server-stream' : 'unary';
}

export const NAMESPACE_HEADER_GRPC = 'containerd-namespace';
export const NAMESPACE_HEADER_TTRPC = 'containerd-namespace-ttrpc';
export const LEASE_HEADER_GRPC = 'containerd-lease';

/** The containerd namespace of a call, from either transport's header. */
export function namespaceOf(ctx: Pick<CallContext, 'metadata'>): string | undefined {
  return ctx.metadata[NAMESPACE_HEADER_GRPC]?.[0] || ctx.metadata[NAMESPACE_HEADER_TTRPC]?.[0] || undefined;
}

export function leaseOf(ctx: Pick<CallContext, 'metadata'>): string | undefined {
  return ctx.metadata[LEASE_HEADER_GRPC]?.[0] || undefined;
}
