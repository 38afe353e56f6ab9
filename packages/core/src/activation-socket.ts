/**
 * The socket a demand-started plugin is reached at by everyone but the core
 * (other plugins, outside clients). The core listens on it, starts the
 * plugin on a connection's first request and relays the bytes to the
 * plugin's own socket. Only ttrpc frame headers are read, to hold the plugin
 * while a stream is open: the client's Request opens a stream, the server's
 * Response (or its Data frame closing its side) ends it. A connection with
 * no open stream does not hold the plugin; once the plugin has gone idle and
 * stopped, the connection stays, and its next request starts the plugin
 * again on a fresh upstream connection.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { applySocketMode, prepareSocketPath } from '@boxd/api';
import { Flags, HEADER_SIZE, MessageType } from '@boxd/ttrpc';

export interface ActivationGate {
  /** Resolves once the plugin is ready; the result lets go of it. */
  acquire(): Promise<() => void>;
  /** The running plugin process, so a connection to a stopped one is not reused. */
  pid(): number | undefined;
}

export interface FrameSink {
  header(bytes: Buffer, streamId: number, type: number, flags: number): void;
  payload(bytes: Buffer): void;
}

/** Splits a ttrpc byte stream into frame headers and payload pieces, however it is chunked. */
export class FrameSplitter {
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private have = 0;
  private left = 0;

  constructor(private readonly sink: FrameSink) {}

  /** Part of a frame has been seen and the rest has not. */
  get midFrame(): boolean {
    return this.have > 0 || this.left > 0;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - at);
        this.sink.payload(chunk.subarray(at, at + n));
        this.left -= n;
        at += n;
        continue;
      }
      const n = Math.min(HEADER_SIZE - this.have, chunk.length - at);
      chunk.copy(this.header, this.have, at, at + n);
      this.have += n;
      at += n;
      if (this.have < HEADER_SIZE) return;
      this.have = 0;
      this.left = this.header.readUInt32BE(0);
      this.sink.header(Buffer.from(this.header), this.header.readUInt32BE(4), this.header[8], this.header[9]);
    }
  }
}

interface Upstream {
  socket: Socket;
  pid: number | undefined;
  responses: FrameSplitter;
}

/**
 * One client connection. Each client frame goes where it belongs when its
 * header arrives: to the plugin, into the queue while the plugin starts, or
 * nowhere (a frame for a stream that died with a stopped plugin).
 */
class Relay {
  private readonly open = new Set<number>();
  private release?: () => void;
  private holding = false;
  private upstream?: Upstream;
  private readonly queued: Buffer[] = [];
  /** Where the payload of the client frame being read goes. */
  private route: Socket | 'queue' | 'drop' = 'drop';
  private closed = false;

  constructor(
    private readonly client: Socket,
    private readonly target: string,
    private readonly gate: ActivationGate,
    private readonly logger: Logger,
    private readonly onClose: () => void,
  ) {
    const requests = new FrameSplitter({
      header: (bytes, id, type) => {
        if (type === MessageType.Request) this.opened(id);
        this.route = this.routeForFrame();
        this.send(bytes);
      },
      payload: (bytes) => this.send(bytes),
    });
    client.on('data', (chunk: Buffer) => requests.push(chunk));
    client.on('drain', () => this.upstream?.socket.resume());
    client.on('close', () => this.destroy());
    client.on('error', () => this.destroy());
  }

  private routeForFrame(): Socket | 'queue' | 'drop' {
    if (this.holding) return 'queue';
    if (this.release) return this.connectedUpstream().socket;
    // No stream open: a late frame for a stream that has ended.
    const up = this.upstream;
    return up && up.pid === this.gate.pid() && !up.socket.destroyed ? up.socket : 'drop';
  }

  private send(bytes: Buffer): void {
    if (this.route === 'drop') return;
    if (this.route === 'queue') {
      this.queued.push(bytes);
      this.client.pause();
      return;
    }
    // The rest of a frame whose plugin went away meanwhile goes nowhere.
    if (this.route.destroyed) return;
    if (!this.route.write(bytes)) this.client.pause();
  }

  private opened(id: number): void {
    this.open.add(id);
    if (this.release || this.holding) return;
    this.holding = true;
    this.gate.acquire().then(
      (release) => {
        this.holding = false;
        if (this.closed) return release();
        this.release = release;
        const up = this.connectedUpstream().socket;
        for (const bytes of this.queued.splice(0)) up.write(bytes);
        if (this.route === 'queue') this.route = up;
        if (!up.writableNeedDrain) this.client.resume();
      },
      (err: Error) => {
        this.logger.warn({ err, target: this.target }, 'activation: plugin did not start');
        this.destroy();
      },
    );
  }

  private ended(id: number): void {
    if (!this.open.delete(id) || this.open.size > 0) return;
    this.release?.();
    this.release = undefined;
  }

  /** The connection to the running plugin, dialled again after the plugin stopped. */
  private connectedUpstream(): Upstream {
    const pid = this.gate.pid();
    if (this.upstream && this.upstream.pid === pid && !this.upstream.socket.destroyed) return this.upstream;
    this.upstream?.socket.destroy();
    const socket = connect(this.target);
    const responses = new FrameSplitter({
      header: (_bytes, id, type, flags) => {
        if (type === MessageType.Response || (type === MessageType.Data && flags & Flags.RemoteClosed)) this.ended(id);
      },
      payload: () => undefined,
    });
    const upstream: Upstream = { socket, pid, responses };
    this.upstream = upstream;
    socket.on('data', (chunk: Buffer) => {
      if (!this.client.write(chunk)) socket.pause();
      responses.push(chunk);
    });
    socket.on('drain', () => this.client.resume());
    socket.on('error', (err) => this.logger.debug({ err, target: this.target }, 'activation: upstream connection failed'));
    socket.on('close', () => {
      if (this.upstream !== upstream) return;
      this.upstream = undefined;
      // Open streams are lost with it, as on a direct connection; an idle client stays.
      if (this.open.size > 0 || responses.midFrame) this.destroy();
    });
    return upstream;
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.release?.();
    this.release = undefined;
    this.upstream?.socket.destroy();
    this.client.destroy();
    this.onClose();
  }
}

export class ActivationSocket {
  private server?: Server;
  private readonly relays = new Set<Relay>();

  constructor(
    readonly path: string,
    private readonly target: string,
    private readonly gate: ActivationGate,
    private readonly logger: Logger,
  ) {}

  async listen(): Promise<void> {
    await prepareSocketPath(this.path);
    const server = createServer((client) => {
      const relay = new Relay(client, this.target, this.gate, this.logger, () => this.relays.delete(relay));
      this.relays.add(relay);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err, path: this.path }, 'activation socket error'));
    this.server = server;
    await applySocketMode(this.path);
  }

  /** Stops accepting and drops every relayed connection. */
  async close(): Promise<void> {
    for (const relay of this.relays) relay.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
