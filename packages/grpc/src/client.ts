/** Typed @boxd/api service clients over @grpc/grpc-js. */
import * as grpc from '@grpc/grpc-js';
import {
  methodShape,
  type AnyMethod,
  type BidiStreamCall,
  type CallOptions,
  type ClientStreamCall,
  type ServiceClient,
  type ServiceDefinition,
} from '@boxd/api';
import { callOptions, toGrpcMetadata } from './metadata.js';
import { fromGrpcError } from './status.js';

export interface GrpcClientOptions {
  maxMessageSize?: number;
  /** Share one channel between several service clients. */
  channel?: grpc.Client;
}

export function grpcTarget(address: string): string {
  if (address.startsWith('unix:')) return address.replace(/^unix:\/\//, 'unix:');
  return `unix:${address}`;
}

export function createGrpcChannel(address: string, options: GrpcClientOptions = {}): grpc.Client {
  const max = options.maxMessageSize ?? 16 << 20;
  return new grpc.Client(grpcTarget(address), grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
  });
}

function serializer(m: AnyMethod) {
  return {
    req: (msg: unknown) => Buffer.from(m.requestType.encode(msg as never)),
    res: (buf: Buffer) => m.responseType.decode(buf),
  };
}

function unary(client: grpc.Client, m: AnyMethod) {
  const s = serializer(m);
  return (request: unknown, options?: CallOptions) =>
    new Promise((resolve, reject) => {
      const call = client.makeUnaryRequest(m.path, s.req, s.res, request, toGrpcMetadata(options), callOptions(options), (err, res) =>
        err ? reject(fromGrpcError(err)) : resolve(res),
      );
      options?.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
}

function serverStream(client: grpc.Client, m: AnyMethod) {
  const s = serializer(m);
  return (request: unknown, options?: CallOptions): AsyncIterable<unknown> => ({
    async *[Symbol.asyncIterator]() {
      const call = client.makeServerStreamRequest(m.path, s.req, s.res, request, toGrpcMetadata(options), callOptions(options));
      options?.signal?.addEventListener('abort', () => call.cancel(), { once: true });
      try {
        for await (const message of call) yield message;
      } catch (err) {
        throw fromGrpcError(err);
      } finally {
        call.cancel();
      }
    },
  });
}

function clientStream(client: grpc.Client, m: AnyMethod) {
  const s = serializer(m);
  return (options?: CallOptions): ClientStreamCall<unknown, unknown> => {
    let settle!: { resolve: (v: unknown) => void; reject: (e: unknown) => void };
    const result = new Promise((resolve, reject) => (settle = { resolve, reject }));
    result.catch(() => undefined);
    const call = client.makeClientStreamRequest(m.path, s.req, s.res, toGrpcMetadata(options), callOptions(options), (err, res) =>
      err ? settle.reject(fromGrpcError(err)) : settle.resolve(res),
    );
    return {
      send: (message) => new Promise<void>((resolve) => (call.write(message) ? resolve() : call.once('drain', () => resolve()))),
      finish: () => {
        call.end();
        return result;
      },
      cancel: () => call.cancel(),
    };
  };
}

function bidiStream(client: grpc.Client, m: AnyMethod) {
  const s = serializer(m);
  return (options?: CallOptions): BidiStreamCall<unknown, unknown> => {
    const call = client.makeBidiStreamRequest(m.path, s.req, s.res, toGrpcMetadata(options), callOptions(options));
    // The call's own iterator: reading pauses the stream, so a slow reader bounds memory.
    const inbox = call.iterator({ destroyOnReturn: false });
    const next = async () => {
      try {
        const r = await inbox.next();
        return r.done ? undefined : (r.value as unknown);
      } catch (err) {
        throw fromGrpcError(err);
      }
    };
    options?.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    return {
      send: (message) => new Promise<void>((resolve) => (call.write(message) ? resolve() : call.once('drain', () => resolve()))),
      end: async () => {
        call.end();
      },
      recv: next,
      cancel: () => call.cancel(),
      async *[Symbol.asyncIterator]() {
        for (let m = await next(); m !== undefined; m = await next()) yield m;
      },
    };
  };
}

/** A typed client for one service over gRPC. */
export function createGrpcClient<S extends ServiceDefinition>(def: S, address: string | grpc.Client, options: GrpcClientOptions = {}): ServiceClient<S> & { close(): void } {
  const channel = typeof address === 'string' ? createGrpcChannel(address, options) : address;
  const out: Record<string, unknown> = { close: () => channel.close() };
  for (const [name, m] of Object.entries(def.methods)) {
    const make = { unary, 'server-stream': serverStream, 'client-stream': clientStream, bidi: bidiStream }[methodShape(m)];
    out[name] = make(channel, m);
  }
  return out as ServiceClient<S> & { close(): void };
}
