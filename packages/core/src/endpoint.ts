/**
 * A plugin as the core reaches it: a socket, a transport, and typed clients
 * that survive the plugin's restarts. While the plugin is down, calls fail
 * at once with Unavailable instead of waiting. A plugin started on demand
 * has a gate: each call and each stream holds it (starting it if need be)
 * until the call ends.
 */
import {
  boxdMetadata,
  methodShape,
  UnavailableError,
  type AnyMethod,
  type BidiStreamCall,
  type CallOptions,
  type MessageCodec,
  type ServiceClient,
  type ServiceDefinition,
} from '@boxd/api';
import { decodeReply, TtrpcClient } from '@boxd/ttrpc';
import { createGrpcChannel, createGrpcClient } from '@boxd/grpc';
import type * as grpc from '@grpc/grpc-js';
import type { ReadCache } from './read-cache.js';

type Transport = 'ttrpc' | 'grpc';

export interface EndpointGate {
  /** Resolves once the plugin is ready; the result lets go of it. */
  acquire(): Promise<() => void>;
}

export class PluginEndpoint {
  private ttrpc?: Promise<TtrpcClient>;
  private channel?: grpc.Client;
  private readonly clients = new Map<string, unknown>();
  private readCache?: ReadCache;

  constructor(
    readonly id: string,
    readonly address: string,
    readonly transport: Transport,
    private readonly gate?: EndpointGate,
  ) {}

  /**
   * Keep answers to reads (the metadata plugin's), following its change notices
   * on each connection. ttrpc only: notices need the plugin's Changes service.
   */
  cacheReads(cache: ReadCache): void {
    if (this.transport !== 'ttrpc') return;
    this.readCache = cache;
    cache.sendWith((service, method, namespace, payload) => this.send(service, method, payload, { namespace }));
  }

  /** `fn` with the plugin held, when it has a gate. */
  private async held<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.gate) return fn();
    const release = await this.gate.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Drop the current connection (the plugin restarted). */
  reset(): void {
    const old = this.ttrpc;
    this.ttrpc = undefined;
    old?.then((c) => c.close()).catch(() => undefined);
  }

  private connection(): Promise<TtrpcClient> {
    if (!this.ttrpc) {
      const attempt = TtrpcClient.connect(this.address).then(
        (client) => {
          client.onClose(() => {
            if (this.ttrpc === attempt) this.ttrpc = undefined;
          });
          // The watch does not hold the plugin: it may stop when idle, which ends the watch.
          if (this.readCache) void this.readCache.follow(client.service(boxdMetadata.ChangesService).Watch({}));
          return client;
        },
        (err: Error) => {
          if (this.ttrpc === attempt) this.ttrpc = undefined;
          throw new UnavailableError(`plugin ${this.id} is not available at ${this.address}: ${err.message}`);
        },
      );
      this.ttrpc = attempt;
    }
    return this.ttrpc;
  }

  /** A unary call with the payload passed through as bytes (ttrpc only). */
  rawCall(service: string, method: string, payload: Uint8Array, options?: CallOptions): Promise<Buffer> {
    const send = () => this.send(service, method, payload, options);
    return this.readCache ? this.readCache.call(service, method, options?.namespace ?? '', payload, send) : send();
  }

  /** The bytes call itself, past the read cache. */
  private send(service: string, method: string, payload: Uint8Array, options?: CallOptions): Promise<Buffer> {
    return this.held(async () => (await this.connection()).call(service, method, payload, options));
  }

  client<S extends ServiceDefinition>(def: S): ServiceClient<S> {
    let client = this.clients.get(def.name) as ServiceClient<S> | undefined;
    if (!client) {
      client = this.transport === 'grpc' ? this.grpcClient(def) : this.ttrpcClient(def);
      this.clients.set(def.name, client);
    }
    return client;
  }

  private grpcClient<S extends ServiceDefinition>(def: S): ServiceClient<S> {
    this.channel ??= createGrpcChannel(this.address);
    return createGrpcClient(def, this.channel);
  }

  private ttrpcClient<S extends ServiceDefinition>(def: S): ServiceClient<S> {
    const out: Record<string, unknown> = {};
    for (const [name, m] of Object.entries(def.methods)) out[name] = this.lazyMethod(def, name, m);
    return out as ServiceClient<S>;
  }

  private lazyMethod(def: ServiceDefinition, name: string, m: AnyMethod): unknown {
    const typed = async () => ((await this.connection()).service(def) as Record<string, (...args: unknown[]) => unknown>)[name];
    const gate = this.gate;
    switch (methodShape(m)) {
      case 'unary':
        if (this.readCache) return this.bytesMethod(def, name, m);
        return (req: unknown, opts?: CallOptions) => this.held(async () => (await typed())(req, opts));
      case 'server-stream':
        return (req: unknown, opts?: CallOptions): AsyncIterable<unknown> => ({
          async *[Symbol.asyncIterator]() {
            const release = gate ? await gate.acquire() : undefined;
            try {
              yield* (await typed())(req, opts) as AsyncIterable<unknown>;
            } finally {
              release?.();
            }
          },
        });
      default:
        return (opts?: CallOptions) => {
          const hold = gate?.acquire() ?? Promise.resolve(() => undefined);
          const call = hold.then(async () => (await typed())(opts) as BidiStreamCall<unknown, unknown>);
          return lazyStream(call, () => void hold.then((release) => release(), () => undefined));
        };
    }
  }

  /** A typed unary method over rawCall, so it goes through the read cache. */
  private bytesMethod(def: ServiceDefinition, name: string, m: AnyMethod): unknown {
    const req = m.requestType as MessageCodec<unknown>;
    const res = m.responseType as MessageCodec<unknown>;
    return async (request: unknown, opts?: CallOptions) => decodeReply(res, await this.rawCall(def.name, name, req.encode(request as never), opts));
  }

  async close(): Promise<void> {
    this.reset();
    this.channel?.close();
  }
}

/**
 * A bidi (or client-streaming) call usable at once; sends wait until the
 * underlying call exists. `done` runs once the call is over: the server
 * ended it, it failed, or the caller cancelled or finished it.
 */
function lazyStream(pending: Promise<BidiStreamCall<unknown, unknown>>, done: () => void): BidiStreamCall<unknown, unknown> {
  pending.catch(done);
  const ending = async <T>(result: Promise<T>, over: (value: T) => boolean): Promise<T> => {
    try {
      const value = await result;
      if (over(value)) done();
      return value;
    } catch (err) {
      done();
      throw err;
    }
  };
  return {
    send: async (msg) => (await pending).send(msg),
    end: async () => (await pending).end(),
    recv: () => ending(pending.then((c) => c.recv()), (res) => res === undefined),
    cancel: () => {
      done();
      void pending.then((c) => c.cancel(), () => undefined);
    },
    finish: () => ending(pending.then((c) => (c as unknown as { finish(): Promise<unknown> }).finish()), () => true),
    async *[Symbol.asyncIterator]() {
      try {
        yield* await pending;
      } finally {
        done();
      }
    },
  } as BidiStreamCall<unknown, unknown>;
}
