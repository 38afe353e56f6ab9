/** Adapts a typed ServiceImplementation to raw byte handlers. */
import {
  encodeResponse,
  InternalError,
  methodShape,
  type AnyMethod,
  type MessageCodec,
  type ServiceDefinition,
  type ServiceImplementation,
} from '@boxd/api';
import type { RawMethod, RawServerStream, RawService } from './handlers.js';

type Fn = (this: unknown, ...args: unknown[]) => unknown;

function decodePayload<T>(codec: MessageCodec<T>, bytes: Uint8Array): T {
  try {
    return codec.decode(bytes);
  } catch (err) {
    throw new InternalError(`ttrpc: error unmarshalling payload: ${err instanceof Error ? err.message : String(err)}`);
  }
}

// A handler may resolve to nothing for an empty message; Go would refuse,
// but encoding `{}` is what every caller of such a method expects.
function encodeResult(codec: MessageCodec<unknown>, value: unknown): Uint8Array {
  return encodeResponse(codec, value as never);
}

function requests<T>(stream: RawServerStream, codec: MessageCodec<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<T>> => {
        const bytes = await stream.recv();
        if (bytes === undefined) return { done: true, value: undefined };
        return { done: false, value: decodePayload(codec, bytes) };
      },
    }),
  };
}

// send() rejects once the call has ended, which also stops the handler's generator.
async function sendAll(stream: RawServerStream, codec: MessageCodec<unknown>, out: AsyncIterable<unknown>): Promise<void> {
  for await (const message of out) await stream.send(encodeResult(codec, message));
}

function adapt(method: AnyMethod, impl: object, handler: Fn): RawMethod {
  const req = method.requestType as MessageCodec<unknown>;
  const res = method.responseType as MessageCodec<unknown>;
  switch (methodShape(method)) {
    case 'unary':
      return {
        kind: 'unary',
        handler: async (payload, ctx) => encodeResult(res, await handler.call(impl, decodePayload(req, payload), ctx)),
      };
    case 'server-stream':
      return {
        kind: 'stream',
        requestStream: false,
        responseStream: true,
        handler: async (stream, ctx) => {
          const first = await stream.recv();
          const out = handler.call(impl, decodePayload(req, first ?? new Uint8Array(0)), ctx) as AsyncIterable<unknown>;
          await sendAll(stream, res, out);
        },
      };
    case 'client-stream':
      return {
        kind: 'stream',
        requestStream: true,
        responseStream: false,
        handler: async (stream, ctx) => encodeResult(res, await handler.call(impl, requests(stream, req), ctx)),
      };
    case 'bidi':
      return {
        kind: 'stream',
        requestStream: true,
        responseStream: true,
        handler: async (stream, ctx) => {
          await sendAll(stream, res, handler.call(impl, requests(stream, req), ctx) as AsyncIterable<unknown>);
        },
      };
  }
}

/** Raw methods for `def`, keyed by wire method name; methods `impl` lacks are left out. */
export function rawService<S extends ServiceDefinition>(def: S, impl: ServiceImplementation<S>): RawService {
  const out: Record<string, RawMethod> = {};
  for (const [key, method] of Object.entries(def.methods)) {
    const handler = (impl as Record<string, unknown>)[key];
    if (typeof handler !== 'function') continue;
    out[method.name] = adapt(method, impl, handler as Fn);
  }
  return out;
}
