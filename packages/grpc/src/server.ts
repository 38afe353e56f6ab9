/**
 * Serves @boxd/api service definitions as gRPC over our own HTTP/2 server side
 * (./http2). The core's public API is called dozens of times per container
 * start; a general-purpose gRPC server, and node's HTTP/2 streams under it, cost
 * more per call than the work, so this does the protocol and no more.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Code, UnimplementedError, applySocketMode, prepareSocketPath, type ServiceDefinition, type ServiceImplementation } from '@boxd/api';
import { H2ServerConnection } from './http2/connection.js';
import type { H2Stream } from './http2/stream.js';
import { refuseCall, serveCall, type Handler, type Route } from './server-call.js';

export interface GrpcServerOptions {
  /** Max message size each way; containerd uses 16 MiB. */
  maxMessageSize?: number;
  /**
   * HTTP/2 receive window per stream (default 16 MiB). The protocol's default
   * 64 KiB stalls a client that streams 1 MiB messages (ctr's content ingest) on
   * window updates; memory stays bounded by the windows.
   */
  streamWindow?: number;
  /** HTTP/2 receive window per connection (default 64 MiB). */
  connectionWindow?: number;
}

export type { ListenOptions } from '@boxd/api';
import type { ListenOptions } from '@boxd/api';

export class GrpcServer {
  private readonly server: Server;
  private readonly routes = new Map<string, Route>();
  private readonly connections = new Set<H2ServerConnection>();
  private readonly services: string[] = [];
  private readonly maxMessageSize: number;

  constructor(options: GrpcServerOptions = {}) {
    this.maxMessageSize = options.maxMessageSize ?? 16 << 20;
    const windows = { streamWindow: options.streamWindow ?? 16 << 20, connectionWindow: options.connectionWindow ?? 64 << 20 };
    this.server = createServer((socket: Socket) => {
      const connection = new H2ServerConnection(socket, windows, (stream) => this.dispatch(stream));
      this.connections.add(connection);
      socket.once('close', () => this.connections.delete(connection));
    });
  }

  addService<S extends ServiceDefinition>(def: S, impl: ServiceImplementation<S>): this {
    for (const [name, method] of Object.entries(def.methods)) {
      const handler = (impl as Record<string, Handler | undefined>)[name];
      this.routes.set(method.path, {
        method,
        handler: handler
          ? handler.bind(impl)
          : () => {
              throw new UnimplementedError(`method ${name} not implemented`);
            },
      });
    }
    this.services.push(def.name);
    return this;
  }

  get serviceNames(): readonly string[] {
    return this.services;
  }

  private dispatch(stream: H2Stream): void {
    const contentType = stream.headers['content-type'];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond([[':status', '415']], true);
      return;
    }
    const path = String(stream.headers[':path'] ?? '');
    const route = this.routes.get(path);
    if (route) return serveCall(stream, route, this.maxMessageSize);
    const [, service = '', method = ''] = path.split('/');
    const known = this.services.includes(service);
    refuseCall(stream, Code.UNIMPLEMENTED, known ? `unknown method ${method} for service ${service}` : `unknown service ${service}`);
  }

  async listen(path: string, options: ListenOptions = {}): Promise<void> {
    await prepareSocketPath(path);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    await applySocketMode(path, options);
  }

  /** Graceful: stop accepting and let calls in flight finish, forcing after timeoutMs. */
  async close(timeoutMs = 5000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.forceClose();
        resolve();
      }, timeoutMs);
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const connection of this.connections) connection.shutdown();
    });
  }

  forceClose(): void {
    for (const connection of this.connections) connection.destroy();
    this.server.close();
  }
}
