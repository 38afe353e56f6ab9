/** One accepted connection: stream-id rules, dispatch, and per-stream Data routing. */
import type { Socket } from 'node:net';
import { CancelledError, Code, ResourceExhaustedError, UnavailableError } from '@boxd/api';
import { Connection, type ConnectionHandler } from './connection.js';
import { Flags, MAX_DATA_LENGTH, MessageType, oversizeMessage } from './frame.js';
import { decodeRequest, metadataFromWire, type Request } from './envelope.js';
import { statusFrame } from './wire.js';
import { ServerCallContext } from './context.js';
import { ServerCall, type CallOwner } from './server-call.js';
import { RecvQueue } from './queue.js';
import type { RawMethod, RawStreamHandler, RawUnaryHandler } from './handlers.js';
import type { Logger } from './logger.js';

/** What a connection needs from the server that accepted it. */
export interface Dispatcher {
  readonly logger: Logger;
  readonly closing: boolean;
  readonly maxStreams: number;
  readonly queueItems: number;
  readonly writeBacklogLimit: number;
  lookup(service: string): ReadonlyMap<string, RawMethod> | undefined;
  connectionIdle(conn: ServerConnection): void;
  connectionClosed(conn: ServerConnection): void;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function runUnary(call: ServerCall, handler: RawUnaryHandler, payload: Buffer): Promise<void> {
  try {
    call.succeed(await handler(payload, call.ctx));
  } catch (err) {
    call.fail(err);
  }
}

async function runStream(call: ServerCall, handler: RawStreamHandler): Promise<void> {
  try {
    call.succeed(await handler(call, call.ctx));
  } catch (err) {
    call.fail(err);
  }
}

export class ServerConnection implements ConnectionHandler, CallOwner {
  readonly conn: Connection;
  private lastStreamId = 0;
  private readonly calls = new Map<number, ServerCall>();

  constructor(
    socket: Socket,
    private readonly server: Dispatcher,
  ) {
    this.conn = new Connection(socket, this, server.logger, { writeBacklogLimit: server.writeBacklogLimit });
  }

  get activeCalls(): number {
    return this.calls.size;
  }

  frame(streamId: number, type: number, flags: number, data: Buffer): void {
    if (type === MessageType.Request) this.request(streamId, flags, data);
    else if (type === MessageType.Data) this.data(streamId, flags, data);
    else this.server.logger.debug({ streamId, type }, 'ttrpc: ignoring frame of unknown type');
  }

  oversize(streamId: number, type: number, _flags: number, length: number): void {
    const message = oversizeMessage(length);
    this.sendStatus(streamId, Code.RESOURCE_EXHAUSTED, message);
    if (type === MessageType.Data) this.calls.get(streamId)?.abort(new ResourceExhaustedError(message));
  }

  corrupt(reason: string): void {
    this.server.logger.warn({ reason }, 'ttrpc: protocol error, closing connection');
    this.conn.end();
  }

  closed(): void {
    const reason = new CancelledError('ttrpc: connection closed');
    for (const call of [...this.calls.values()]) call.abort(reason);
    this.server.connectionClosed(this);
  }

  callDone(call: ServerCall): void {
    this.calls.delete(call.id);
    if (this.calls.size === 0 && this.server.closing) this.server.connectionIdle(this);
  }

  /** Forced shutdown: handlers see their signal abort, the socket goes away. */
  destroy(): void {
    const reason = new UnavailableError('ttrpc: server closed');
    for (const call of [...this.calls.values()]) call.abort(reason);
    this.conn.destroy();
  }

  private sendStatus(streamId: number, code: number, message: string): void {
    this.conn.write(statusFrame(streamId, code, message));
  }

  private request(id: number, flags: number, data: Buffer): void {
    if ((id & 1) === 0) return this.sendStatus(id, Code.INVALID_ARGUMENT, 'StreamID must be odd for client initiated streams');
    if (id <= this.lastStreamId) {
      return this.sendStatus(id, Code.INVALID_ARGUMENT, 'StreamID cannot be re-used and must increment');
    }
    this.lastStreamId = id;
    if (this.server.closing) return this.sendStatus(id, Code.UNAVAILABLE, 'ttrpc: server closed');
    let req: Request;
    try {
      req = decodeRequest(data);
    } catch (err) {
      return this.sendStatus(id, Code.INVALID_ARGUMENT, `unmarshal request error: ${errorText(err)}`);
    }
    const service = this.server.lookup(req.service);
    if (!service) return this.sendStatus(id, Code.UNIMPLEMENTED, `service ${req.service}`);
    const method = service.get(req.method);
    if (!method) return this.sendStatus(id, Code.UNIMPLEMENTED, `method ${req.method}`);
    if (this.calls.size >= this.server.maxStreams) {
      return this.sendStatus(id, Code.RESOURCE_EXHAUSTED, 'ttrpc: too many concurrent streams');
    }

    let deadline: number | undefined;
    let timeoutMs = 0;
    if (req.timeoutNano.greaterThan(0)) {
      timeoutMs = req.timeoutNano.toNumber() / 1e6;
      deadline = Date.now() + timeoutMs;
    }
    const ctx = new ServerCallContext(req.metadata.length ? metadataFromWire(req.metadata) : undefined, deadline);
    const call = new ServerCall(id, this, ctx, method.kind === 'stream' && method.responseStream);
    this.calls.set(id, call);
    if (deadline !== undefined) call.armDeadline(timeoutMs);

    const payload = req.payload as Buffer;
    if (method.kind === 'unary') {
      void runUnary(call, method.handler, payload);
      return;
    }
    const queue = new RecvQueue(this.conn, this.server.queueItems, MAX_DATA_LENGTH);
    call.queue = queue;
    // As containerd/ttrpc: the Request payload is the first message unless a
    // client-streaming call left it empty.
    if (payload.length > 0 || !method.requestStream) queue.push(payload);
    if (!(flags & Flags.RemoteOpen) || flags & Flags.RemoteClosed) queue.end();
    void runStream(call, method.handler);
  }

  private data(id: number, flags: number, data: Buffer): void {
    const call = this.calls.get(id);
    if (!call) return this.sendStatus(id, Code.INVALID_ARGUMENT, 'StreamID is no longer active');
    if (flags & Flags.RemoteClosed) {
      if (data.length > 0) {
        this.sendStatus(id, Code.INVALID_ARGUMENT, 'data close message cannot include data');
        call.abort(new CancelledError('ttrpc: data close message cannot include data'));
        return;
      }
      call.queue?.end();
      return;
    }
    if (flags & Flags.NoData) return;
    if (!call.queue || call.queue.isEnded) {
      this.server.logger.debug({ streamId: id }, 'ttrpc: ignoring Data on a stream whose sending side is closed');
      return;
    }
    call.queue.push(data);
  }
}
