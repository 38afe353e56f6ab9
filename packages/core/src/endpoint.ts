/**
 * A plugin as the core reaches it: a socket, a transport, and typed clients
 * that survive the plugin's restarts. While the plugin is down, calls fail
 * at once with Unavailable instead of waiting.
 */
import {
  methodShape,
  UnavailableError,
  type AnyMethod,
  type BidiStreamCall,
  type CallOptions,
  type ServiceClient,
  type ServiceDefinition,
} from '@boxd/api';
import { TtrpcClient } from '@boxd/ttrpc';
import { createGrpcChannel, createGrpcClient } from '@boxd/grpc';
import type * as grpc from '@grpc/grpc-js';

type Transport = 'ttrpc' | 'grpc';

export class PluginEndpoint {
  private ttrpc?: Promise<TtrpcClient>;
  private channel?: grpc.Client;
  private readonly clients = new Map<string, unknown>();

  constructor(
    readonly id: string,
    readonly address: string,
    readonly transport: Transport,
  ) {}

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
  async rawCall(service: string, method: string, payload: Uint8Array, options?: CallOptions): Promise<Buffer> {
    return (await this.connection()).call(service, method, payload, options);
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
    switch (methodShape(m)) {
      case 'unary':
        return async (req: unknown, opts?: CallOptions) => (await typed())(req, opts);
      case 'server-stream':
        return (req: unknown, opts?: CallOptions): AsyncIterable<unknown> => ({
          async *[Symbol.asyncIterator]() {
            yield* (await typed())(req, opts) as AsyncIterable<unknown>;
          },
        });
      default:
        return (opts?: CallOptions) => lazyStream(typed().then((fn) => fn(opts) as BidiStreamCall<unknown, unknown>));
    }
  }

  async close(): Promise<void> {
    this.reset();
    this.channel?.close();
  }
}

/** A bidi call usable at once; sends wait until the underlying call exists. */
function lazyStream(pending: Promise<BidiStreamCall<unknown, unknown>>): BidiStreamCall<unknown, unknown> {
  pending.catch(() => undefined);
  return {
    send: async (msg) => (await pending).send(msg),
    end: async () => (await pending).end(),
    recv: async () => (await pending).recv(),
    cancel: () => void pending.then((c) => c.cancel(), () => undefined),
    finish: async () => ((await pending) as unknown as { finish(): Promise<unknown> }).finish(),
    async *[Symbol.asyncIterator]() {
      yield* await pending;
    },
  } as BidiStreamCall<unknown, unknown>;
}
