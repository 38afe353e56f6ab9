/** The ttrpc server: service registry, unix socket listeners, lifecycle. */
import { createServer, type Server, type Socket } from 'node:net';
import { AlreadyExistsError, type ServiceDefinition, type ServiceImplementation } from '@boxd/api';
import { ServerConnection, type Dispatcher } from './server-connection.js';
import { rawService } from './typed-server.js';
import { applySocketMode, prepareSocketPath, socketPath, type ListenOptions } from './address.js';
import { silentLogger, type Logger } from './logger.js';
import type { RawMethod, RawService } from './handlers.js';
import { MAX_DATA_LENGTH } from './frame.js';

export interface TtrpcServerOptions {
  logger?: Logger;
  /** Concurrent streams per connection; beyond it requests get RESOURCE_EXHAUSTED. */
  maxStreamsPerConnection?: number;
  /** Client messages buffered per stream before the connection stops reading. */
  streamQueueSize?: number;
  /** Bytes of unsent responses per connection before it stops reading requests. */
  writeBacklogLimit?: number;
}

export interface CloseOptions {
  /** Wait for calls in flight before closing connections (default true). */
  graceful?: boolean;
  /** How long a graceful close waits before forcing (default 5000; Infinity waits forever). */
  timeoutMs?: number;
}

export class TtrpcServer implements Dispatcher {
  readonly logger: Logger;
  readonly maxStreams: number;
  readonly queueItems: number;
  readonly writeBacklogLimit: number;
  private readonly services = new Map<string, Map<string, RawMethod>>();
  private readonly listeners: Server[] = [];
  private readonly connections = new Set<ServerConnection>();
  private closingPromise: Promise<void> | undefined;
  private allClosed: (() => void) | undefined;

  constructor(options: TtrpcServerOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    this.maxStreams = options.maxStreamsPerConnection ?? 10_000;
    this.queueItems = options.streamQueueSize ?? 64;
    this.writeBacklogLimit = options.writeBacklogLimit ?? 2 * MAX_DATA_LENGTH;
  }

  get closing(): boolean {
    return this.closingPromise !== undefined;
  }

  get serviceNames(): readonly string[] {
    return [...this.services.keys()];
  }

  /** Registers byte-level handlers for a fully qualified service name. */
  registerService(name: string, methods: RawService): this {
    if (this.services.has(name)) throw new AlreadyExistsError(`ttrpc: service ${name} already registered`);
    this.services.set(name, new Map(Object.entries(methods)));
    return this;
  }

  addService<S extends ServiceDefinition>(def: S, impl: ServiceImplementation<S>): this {
    return this.registerService(def.name, rawService(def, impl));
  }

  /** @internal */
  lookup(service: string): ReadonlyMap<string, RawMethod> | undefined {
    return this.services.get(service);
  }

  /**
   * Listens on a unix socket (`/path`, `unix:///path`, or `\0name` for an
   * abstract socket). A stale socket file is replaced; a live one is an error.
   */
  async listen(address: string, options: ListenOptions = {}): Promise<void> {
    if (this.closing) throw new Error('ttrpc: server closed');
    const path = socketPath(address);
    await prepareSocketPath(path);
    const listener = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(path, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => this.logger.error({ err, path }, 'ttrpc: listener error'));
    this.listeners.push(listener);
    try {
      await applySocketMode(path, options);
    } catch (err) {
      listener.close();
      this.listeners.splice(this.listeners.indexOf(listener), 1);
      throw err;
    }
  }

  /** Serves an already connected socket (for example one half of a socketpair). */
  serve(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.connections.add(new ServerConnection(socket, this));
  }

  /** @internal */
  connectionIdle(conn: ServerConnection): void {
    conn.conn.end();
  }

  /** @internal */
  connectionClosed(conn: ServerConnection): void {
    this.connections.delete(conn);
    if (this.connections.size === 0) this.allClosed?.();
  }

  /**
   * Stops accepting, then (graceful) lets calls in flight finish and closes
   * each connection once idle, forcing whatever remains after `timeoutMs`;
   * a forced close aborts every handler's signal at once.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closingPromise) {
      if (options.graceful === false) this.forceConnections();
      return this.closingPromise;
    }
    const drained = new Promise<void>((resolve) => {
      this.allClosed = resolve;
    });
    this.closingPromise = this.shutdown(drained, options);
    return this.closingPromise;
  }

  private async shutdown(drained: Promise<void>, options: CloseOptions): Promise<void> {
    const listenersClosed = Promise.all(
      this.listeners.splice(0).map((l) => new Promise<void>((resolve) => l.close(() => resolve()))),
    );
    if (options.graceful === false) this.forceConnections();
    else {
      for (const conn of this.connections) if (conn.activeCalls === 0) conn.conn.end();
      const timeoutMs = options.timeoutMs ?? 5000;
      if (Number.isFinite(timeoutMs)) {
        const timer = setTimeout(() => this.forceConnections(), Math.max(0, timeoutMs));
        void drained.then(() => clearTimeout(timer));
      }
    }
    if (this.connections.size === 0) this.allClosed?.();
    await Promise.all([drained, listenersClosed]);
  }

  private forceConnections(): void {
    for (const conn of this.connections) conn.destroy();
  }
}
