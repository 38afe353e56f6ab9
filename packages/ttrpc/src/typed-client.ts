/** Builds a typed ServiceClient from a ServiceDefinition over a TtrpcClient. */
import {
  FailedPreconditionError,
  InternalError,
  methodShape,
  type AnyMethod,
  type BidiStreamCall,
  type CallOptions,
  type ClientStreamCall,
  type MessageCodec,
  type ServiceClient,
  type ServiceDefinition,
} from '@boxd/api';
import type { RawClientStream } from './client-calls.js';
import type { TtrpcClient } from './client.js';
import { wirePartsOf, type FrameData } from './wire-parts.js';

/** A response decoded, or INTERNAL saying it did not decode. */
export function decodeReply<T>(codec: MessageCodec<T>, bytes: Uint8Array): T {
  try {
    return codec.decode(bytes);
  } catch (err) {
    throw new InternalError(`ttrpc: error unmarshalling response: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function recvDecoded<T>(stream: RawClientStream, codec: MessageCodec<T>): Promise<T | undefined> {
  const bytes = await stream.recv();
  if (bytes === undefined) return undefined;
  try {
    return decodeReply(codec, bytes);
  } catch (err) {
    stream.cancel();
    throw err;
  }
}

function iterate<T>(stream: RawClientStream, codec: MessageCodec<T>): AsyncIterator<T> {
  return {
    next: async () => {
      const value = await recvDecoded(stream, codec);
      return value === undefined ? { done: true, value: undefined } : { done: false, value };
    },
    // Leaving the loop early forgets the stream; later frames are dropped.
    return: async () => {
      stream.cancel();
      return { done: true, value: undefined };
    },
  };
}

function encodeOrReject<T>(codec: MessageCodec<T>, message: unknown, send: (bytes: FrameData) => Promise<void>): Promise<void> {
  let bytes: FrameData;
  try {
    bytes = wirePartsOf(message) ?? codec.encode(message as never);
  } catch (err) {
    return Promise.reject(err);
  }
  return send(bytes);
}

const CLIENT_STREAM = { requestStream: true, responseStream: false } as const;
const SERVER_STREAM = { requestStream: false, responseStream: true } as const;
const BIDI = { requestStream: true, responseStream: true } as const;

function unary(client: TtrpcClient, service: string, m: AnyMethod) {
  const req = m.requestType as MessageCodec<unknown>;
  const res = m.responseType as MessageCodec<unknown>;
  return async (request: unknown, options?: CallOptions): Promise<unknown> =>
    decodeReply(res, await client.call(service, m.name, req.encode(request as never), options));
}

function serverStream(client: TtrpcClient, service: string, m: AnyMethod) {
  const req = m.requestType as MessageCodec<unknown>;
  const res = m.responseType as MessageCodec<unknown>;
  return (request: unknown, options?: CallOptions): AsyncIterable<unknown> => {
    // Encoded now so later mutation of `request` cannot change what is sent;
    // the call itself starts when iteration does.
    let payload: Uint8Array | undefined;
    let encodeError: unknown;
    try {
      payload = req.encode(request as never);
    } catch (err) {
      encodeError = err;
    }
    let started = false;
    return {
      [Symbol.asyncIterator]: () => {
        if (started) throw new FailedPreconditionError('ttrpc: a response stream can be iterated only once');
        started = true;
        if (encodeError !== undefined) {
          return { next: () => Promise.reject(encodeError) };
        }
        return iterate(client.stream(service, m.name, SERVER_STREAM, payload, options), res);
      },
    };
  };
}

function clientStream(client: TtrpcClient, service: string, m: AnyMethod) {
  const req = m.requestType as MessageCodec<unknown>;
  const res = m.responseType as MessageCodec<unknown>;
  return (options?: CallOptions): ClientStreamCall<unknown, unknown> => {
    const stream = client.stream(service, m.name, CLIENT_STREAM, undefined, options);
    return {
      send: (message) => encodeOrReject(req, message, (bytes) => stream.send(bytes)),
      finish: async () => {
        await stream.closeSend();
        const reply = await recvDecoded(stream, res);
        if (reply === undefined) throw new InternalError('ttrpc: stream ended without a response');
        return reply;
      },
      cancel: () => stream.cancel(),
    };
  };
}

function bidi(client: TtrpcClient, service: string, m: AnyMethod) {
  const req = m.requestType as MessageCodec<unknown>;
  const res = m.responseType as MessageCodec<unknown>;
  return (options?: CallOptions): BidiStreamCall<unknown, unknown> => {
    const stream = client.stream(service, m.name, BIDI, undefined, options);
    return {
      send: (message) => encodeOrReject(req, message, (bytes) => stream.send(bytes)),
      end: () => stream.closeSend(),
      recv: () => recvDecoded(stream, res),
      cancel: () => stream.cancel(),
      [Symbol.asyncIterator]: () => iterate(stream, res),
    };
  };
}

/** A typed client for `def`, calling over `client`'s connection. */
export function createTtrpcClient<S extends ServiceDefinition>(def: S, client: TtrpcClient): ServiceClient<S> {
  const out: Record<string, unknown> = {};
  for (const [key, m] of Object.entries(def.methods)) {
    switch (methodShape(m)) {
      case 'unary':
        out[key] = unary(client, def.name, m);
        break;
      case 'server-stream':
        out[key] = serverStream(client, def.name, m);
        break;
      case 'client-stream':
        out[key] = clientStream(client, def.name, m);
        break;
      case 'bidi':
        out[key] = bidi(client, def.name, m);
        break;
    }
  }
  return out as ServiceClient<S>;
}
