/** Serves @boxd/api service definitions with @grpc/grpc-js. */
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import {
  CancelledError,
  methodShape,
  type AnyMethod,
  type CallContext,
  type ServiceDefinition,
  type ServiceImplementation,
  applySocketMode,
  encodeResponse,
  prepareSocketPath,
} from '@boxd/api';
import { fromGrpcMetadata } from './metadata.js';
import { toGrpcStatus } from './status.js';
import { keepReceivedWire } from './received-wire.js';

export interface GrpcServerOptions {
  /** Max message size each way; containerd uses 16 MiB. */
  maxMessageSize?: number;
  /** HTTP/2 receive window per stream (default 16 MiB). */
  streamWindow?: number;
  /** HTTP/2 receive window per connection (default 64 MiB). */
  connectionWindow?: number;
}

/**
 * Node's default 64 KiB HTTP/2 windows stall a client that streams 1 MiB
 * messages (ctr's content ingest) on window updates; grpc-js has no option
 * for them, so they are set on the HTTP/2 servers it creates. Memory stays
 * bounded by the windows.
 */
interface Http2Internals {
  commonServerOptions?: { settings?: Record<string, unknown> };
  http2Servers?: Map<NodeJS.EventEmitter, unknown>;
}

function raiseWindows(server: grpc.Server, streamWindow: number): void {
  const internals = server as unknown as Http2Internals;
  if (!internals.commonServerOptions) return;
  internals.commonServerOptions.settings = { ...internals.commonServerOptions.settings, initialWindowSize: streamWindow };
}

const windowed = new WeakSet<NodeJS.EventEmitter>();

function raiseConnectionWindows(server: grpc.Server, connectionWindow: number): void {
  for (const http2Server of (server as unknown as Http2Internals).http2Servers?.keys() ?? []) {
    if (windowed.has(http2Server)) continue;
    windowed.add(http2Server);
    http2Server.on('session', (session: { setLocalWindowSize?(n: number): void }) => session.setLocalWindowSize?.(connectionWindow));
  }
}

export type { ListenOptions } from '@boxd/api';
import type { ListenOptions } from '@boxd/api';

type AnyHandler = (...args: never[]) => unknown;
type ServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

// grpc-js reports 'cancelled' as every call's stream closes, finished or not. abort()
// without a reason builds a DOMException, stack trace and all, each time: one shared
// reason keeps that off the hot path.
const CALL_CANCELLED = new CancelledError('grpc: call cancelled');

function contextOf(call: ServerCall): CallContext {
  const controller = new AbortController();
  const events = call as unknown as NodeJS.EventEmitter;
  events.on('cancelled', () => controller.abort(CALL_CANCELLED));
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : undefined;
  return { metadata: fromGrpcMetadata(call.metadata), signal: controller.signal, deadline: ms, transport: 'grpc' };
}

async function writeAll(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, messages: AsyncIterable<unknown>, ctx: CallContext): Promise<void> {
  for await (const message of messages) {
    if (ctx.signal.aborted) return;
    if (!call.write(message)) await Promise.race([once(call, 'drain'), once(ctx.signal as unknown as NodeJS.EventEmitter, 'abort').catch(() => undefined)]);
  }
}

// Node's default stream iterator destroys the stream when the loop ends,
// which would cancel the call before its response or status is sent.
function requestsOf(call: grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): AsyncIterable<unknown> {
  return call.iterator({ destroyOnReturn: false });
}

function adaptHandler(method: AnyMethod, handler: AnyHandler): grpc.UntypedHandleCall {
  const h = handler as unknown as (...args: unknown[]) => unknown;
  switch (methodShape(method)) {
    case 'unary':
      return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        Promise.resolve()
          .then(() => h(call.request, contextOf(call)))
          .then((res) => callback(null, res ?? {}), (err) => callback(toGrpcStatus(err)));
      };
    case 'client-stream':
      return (call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        Promise.resolve()
          .then(() => h(requestsOf(call), contextOf(call)))
          .then((res) => callback(null, res ?? {}), (err) => callback(toGrpcStatus(err)));
      };
    case 'server-stream':
      return (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const ctx = contextOf(call);
        Promise.resolve()
          .then(() => writeAll(call, h(call.request, ctx) as AsyncIterable<unknown>, ctx))
          .then(() => call.end(), (err) => call.emit('error', toGrpcStatus(err)));
      };
    case 'bidi':
      return (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        const ctx = contextOf(call);
        Promise.resolve()
          .then(() => writeAll(call, h(requestsOf(call), ctx) as AsyncIterable<unknown>, ctx))
          .then(() => call.end(), (err) => call.emit('error', toGrpcStatus(err)));
      };
  }
}

export function grpcServiceDefinition(def: ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def.methods)) {
    out[name] = {
      path: m.path,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: (msg: unknown) => Buffer.from(m.requestType.encode(msg as never)),
      // Streamed requests carry the payloads worth relaying as received; a unary call on
      // the hot path does not pay for attaching its bytes.
      requestDeserialize: m.requestStream ? (buf: Buffer) => keepReceivedWire(m.requestType.decode(buf), buf) : (buf: Buffer) => m.requestType.decode(buf),
      responseSerialize: (msg: unknown) => Buffer.from(encodeResponse(m.responseType, msg as never)),
      responseDeserialize: (buf: Buffer) => m.responseType.decode(buf),
      originalName: name,
    };
  }
  return out;
}

export class GrpcServer {
  readonly server: grpc.Server;
  private readonly services: string[] = [];
  private readonly connectionWindow: number;

  constructor(options: GrpcServerOptions = {}) {
    const max = options.maxMessageSize ?? 16 << 20;
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': max, 'grpc.max_send_message_length': max });
    raiseWindows(this.server, options.streamWindow ?? 16 << 20);
    this.connectionWindow = options.connectionWindow ?? 64 << 20;
  }

  addService<S extends ServiceDefinition>(def: S, impl: ServiceImplementation<S>): this {
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const [name, m] of Object.entries(def.methods)) {
      handlers[name] = adaptHandler(m, (impl as Record<string, AnyHandler>)[name]);
    }
    this.server.addService(grpcServiceDefinition(def), handlers);
    this.services.push(def.name);
    return this;
  }

  get serviceNames(): readonly string[] {
    return this.services;
  }

  async listen(path: string, options: ListenOptions = {}): Promise<void> {
    await prepareSocketPath(path);
    await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    raiseConnectionWindows(this.server, this.connectionWindow);
    await applySocketMode(path, options);
  }

  /** Graceful: stop accepting and wait for calls in flight, forcing after timeoutMs. */
  async close(timeoutMs = 5000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, timeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  forceClose(): void {
    this.server.forceShutdown();
  }
}
