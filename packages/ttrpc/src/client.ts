/** The ttrpc client: one connection, many concurrent calls and streams. */
import { connect as netConnect, type Socket } from 'node:net';
import Long from 'long';
import {
  CancelledError,
  type BoxdError,
  DeadlineExceededError,
  ResourceExhaustedError,
  UnavailableError,
  type CallOptions,
  type ServiceClient,
  type ServiceDefinition,
} from '@boxd/api';
import { Connection } from './connection.js';
import { Flags, HEADER_SIZE, MAX_DATA_LENGTH, MessageType, oversizeMessage } from './frame.js';
import { requestFrame, stampStreamId } from './wire.js';
import { wireMetadata } from './metadata.js';
import { ClientStream, UnaryCall, type CallHost, type PendingCall, type RawClientStream } from './client-calls.js';
import { createTtrpcClient } from './typed-client.js';
import { socketPath } from './address.js';
import { silentLogger, type Logger } from './logger.js';

export interface TtrpcClientOptions {
  logger?: Logger;
  /** Server messages buffered per stream before the connection stops reading. */
  streamQueueSize?: number;
}

export interface StreamShape {
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

const EMPTY = new Uint8Array(0);
const MAX_STREAM_ID = 0xffffffff;
// setTimeout cannot wait longer; such deadlines are sent but not armed locally.
const MAX_TIMER_MS = 2 ** 31 - 1;

function deadlineFired(call: PendingCall): void {
  call.fail(new DeadlineExceededError('context deadline exceeded'));
}

function closedError(cause?: Error): BoxdError {
  return new UnavailableError('ttrpc: closed', cause ? { cause } : undefined);
}

export class TtrpcClient implements CallHost {
  readonly conn: Connection;
  private readonly logger: Logger;
  private readonly queueItems: number;
  private readonly calls = new Map<number, PendingCall>();
  private readonly closeCallbacks = new Set<(err?: Error) => void>();
  private nextId = 1;
  private isClosed = false;
  private closeError: Error | undefined;
  private closedPromise: Promise<void>;
  private markClosed!: () => void;

  /** Connects to `/path` or `unix:///path`; fails with UNAVAILABLE if nothing listens. */
  static connect(address: string, options: TtrpcClientOptions = {}): Promise<TtrpcClient> {
    const path = socketPath(address);
    return new Promise((resolve, reject) => {
      const socket = netConnect(path);
      const onError = (err: Error): void => {
        socket.destroy();
        reject(new UnavailableError(`ttrpc: dial ${path}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new TtrpcClient(socket, options));
      });
    });
  }

  constructor(socket: Socket, options: TtrpcClientOptions = {}) {
    this.logger = options.logger ?? silentLogger;
    this.queueItems = options.streamQueueSize ?? 64;
    this.closedPromise = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    this.conn = new Connection(
      socket,
      {
        frame: (id, type, flags, data) => this.onFrame(id, type, flags, data),
        oversize: (id, _type, _flags, length) =>
          this.calls.get(id)?.fail(new ResourceExhaustedError(oversizeMessage(length))),
        corrupt: (reason) => {
          this.logger.warn({ reason }, 'ttrpc: protocol error, closing connection');
          this.conn.destroy(new Error(`ttrpc: ${reason}`));
        },
        closed: (err) => this.onClosed(err),
      },
      this.logger,
    );
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** A unary call: Request with flags 0, as every ttrpc version understands. */
  call(service: string, method: string, payload: Uint8Array, options?: CallOptions): Promise<Buffer> {
    if (this.isClosed) return Promise.reject(closedError(this.closeError));
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new CancelledError('context canceled'));
    let frame: Buffer;
    try {
      frame = this.encodeRequest(service, method, payload, options, 0);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const id = this.allocate();
      const call = new UnaryCall(id, this, resolve, reject);
      this.calls.set(id, call);
      stampStreamId(frame, id);
      this.conn.write(frame);
      this.watch(call, options);
    });
  }

  /**
   * Opens a stream (ttrpc >= 1.2 peers only). As the Go client does, a
   * client-streaming method opens with `remote open` and an empty payload;
   * otherwise the Request carries `payload` and `remote closed`.
   */
  stream(service: string, method: string, shape: StreamShape, payload: Uint8Array = EMPTY, options?: CallOptions): RawClientStream {
    let failure: Error | undefined;
    let frame: Buffer | undefined;
    if (this.isClosed) failure = closedError(this.closeError);
    else if (options?.signal?.aborted) failure = new CancelledError('context canceled');
    else {
      try {
        frame = this.encodeRequest(service, method, shape.requestStream ? EMPTY : payload, options, shape.requestStream ? Flags.RemoteOpen : Flags.RemoteClosed);
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
      }
    }
    if (failure || !frame) {
      const dead = new ClientStream(0, this, shape.responseStream, 1, true);
      dead.fail(failure!);
      return dead;
    }
    const id = this.allocate();
    const stream = new ClientStream(id, this, shape.responseStream, this.queueItems, !shape.requestStream);
    this.calls.set(id, stream);
    stampStreamId(frame, id);
    this.conn.write(frame);
    this.watch(stream, options);
    return stream;
  }

  /** A typed client for one service on this connection. */
  service<S extends ServiceDefinition>(def: S): ServiceClient<S> {
    return createTtrpcClient(def, this);
  }

  /** Runs `cb` once when the connection closes (at once if it already has). */
  onClose(cb: (err?: Error) => void): () => void {
    if (this.isClosed) {
      queueMicrotask(() => cb(this.closeError));
      return () => {};
    }
    this.closeCallbacks.add(cb);
    return () => this.closeCallbacks.delete(cb);
  }

  /** Flushes what was sent, closes the socket; calls still pending fail UNAVAILABLE. */
  close(): Promise<void> {
    this.conn.end();
    return this.closedPromise;
  }

  forget(id: number): void {
    this.calls.delete(id);
  }

  private allocate(): number {
    const id = this.nextId;
    if (id > MAX_STREAM_ID) {
      // Ids must strictly increase on a connection; once they run out the
      // connection cannot carry another call.
      this.conn.destroy(new Error('ttrpc: stream ids exhausted'));
      throw closedError();
    }
    this.nextId += 2;
    return id;
  }

  private encodeRequest(service: string, method: string, payload: Uint8Array, options: CallOptions | undefined, flags: number): Buffer {
    let timeoutNano: Long | undefined;
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs !== undefined && timeoutMs > 0) timeoutNano = Long.fromNumber(Math.ceil(timeoutMs * 1e6));
    const frame = requestFrame(
      { service, method, payload, timeoutNano, metadata: options ? wireMetadata(options) : undefined },
      flags,
    );
    const length = frame.length - HEADER_SIZE;
    if (length > MAX_DATA_LENGTH) throw new ResourceExhaustedError(oversizeMessage(length));
    return frame;
  }

  private watch(call: UnaryCall | ClientStream, options: CallOptions | undefined): void {
    if (!options) return;
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS) {
      call.timer = setTimeout(deadlineFired, Math.ceil(timeoutMs), call);
    }
    const signal = options.signal;
    if (signal) {
      call.signal = signal;
      call.onAbort = () => call.cancelled(new CancelledError('context canceled'));
      signal.addEventListener('abort', call.onAbort, { once: true });
    }
  }

  private onFrame(id: number, type: number, flags: number, data: Buffer): void {
    const call = this.calls.get(id);
    if (!call) {
      this.logger.debug({ streamId: id, type }, 'ttrpc: received message on inactive stream');
      return;
    }
    if (type === MessageType.Response) call.response(data);
    else if (type === MessageType.Data) call.data(flags, data);
    else this.logger.debug({ streamId: id, type }, 'ttrpc: ignoring frame of unknown type');
  }

  private onClosed(err: Error | undefined): void {
    this.isClosed = true;
    this.closeError = err;
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) call.fail(closedError(err));
    const callbacks = [...this.closeCallbacks];
    this.closeCallbacks.clear();
    for (const cb of callbacks) {
      try {
        cb(err);
      } catch (cbErr) {
        this.logger.error({ err: cbErr }, 'ttrpc: onClose callback threw');
      }
    }
    this.markClosed();
  }
}
