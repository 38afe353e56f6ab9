/**
 * Serves @boxd/api service definitions as gRPC over node's own HTTP/2. The
 * core's public API is called dozens of times per container start, and a
 * general-purpose gRPC server's per-call machinery (interceptors, filters,
 * channelz) cost as much as the work; this does the protocol and no more.
 */
import { createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { Code, UnimplementedError, applySocketMode, prepareSocketPath, type ServiceDefinition, type ServiceImplementation } from '@boxd/api';
import { refuseCall, serveCall, type Handler, type Route } from './server-call.js';

export interface GrpcServerOptions {
  /** Max message size each way; containerd uses 16 MiB. */
  maxMessageSize?: number;
  /**
   * HTTP/2 receive window per stream (default 16 MiB). Node's default 64 KiB
   * stalls a client that streams 1 MiB messages (ctr's content ingest) on
   * window updates; memory stays bounded by the windows.
   */
  streamWindow?: number;
  /** HTTP/2 receive window per connection (default 64 MiB). */
  connectionWindow?: number;
}

export type { ListenOptions } from '@boxd/api';
import type { ListenOptions } from '@boxd/api';

export class GrpcServer {
  private readonly http2: Http2Server;
  private readonly routes = new Map<string, Route>();
  private readonly sessions = new Set<Http2Session>();
  private readonly services: string[] = [];
  private readonly maxMessageSize: number;

  constructor(options: GrpcServerOptions = {}) {
    this.maxMessageSize = options.maxMessageSize ?? 16 << 20;
    const connectionWindow = options.connectionWindow ?? 64 << 20;
    // Memory per session is bounded by the windows, not by node's 10 MB default,
    // which would refuse a client filling the windows it was given.
    this.http2 = createServer({ settings: { initialWindowSize: options.streamWindow ?? 16 << 20 }, maxSessionMemory: Number.MAX_SAFE_INTEGER });
    this.http2.on('session', (session: Http2Session) => {
      this.sessions.add(session);
      session.on('error', () => undefined);
      session.once('close', () => this.sessions.delete(session));
      session.setLocalWindowSize(connectionWindow);
    });
    this.http2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.dispatch(stream, headers));
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

  private dispatch(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const contentType = headers['content-type'];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.on('error', () => undefined);
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = String(headers[':path'] ?? '');
    const route = this.routes.get(path);
    if (route) return serveCall(stream, headers, route, this.maxMessageSize);
    const [, service = '', method = ''] = path.split('/');
    const known = this.services.includes(service);
    refuseCall(stream, Code.UNIMPLEMENTED, known ? `unknown method ${method} for service ${service}` : `unknown service ${service}`);
  }

  async listen(path: string, options: ListenOptions = {}): Promise<void> {
    await prepareSocketPath(path);
    await new Promise<void>((resolve, reject) => {
      this.http2.once('error', reject);
      this.http2.listen(path, () => {
        this.http2.off('error', reject);
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
      this.http2.close(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const session of this.sessions) session.close();
    });
  }

  forceClose(): void {
    for (const session of this.sessions) session.destroy();
    this.http2.close();
  }
}
