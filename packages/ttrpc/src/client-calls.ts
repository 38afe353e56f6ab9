/** Client-side state of calls in flight: unary promises and raw streams. */
import {
  CancelledError,
  FailedPreconditionError,
  InternalError,
  ResourceExhaustedError,
  UnavailableError,
  fromStatus,
} from '@boxd/api';
import { Flags, MAX_DATA_LENGTH, MessageType, oversizeMessage } from './frame.js';
import { decodeResponse, type Response } from './envelope.js';
import type { Connection } from './connection.js';
import { RecvQueue } from './queue.js';
import { frameDataLength, type FrameData } from './wire-parts.js';

/** How the client reaches the connection a call lives on. */
export interface CallHost {
  readonly conn: Connection;
  forget(id: number): void;
}

export interface PendingCall {
  response(data: Buffer): void;
  data(flags: number, data: Buffer): void;
  fail(err: Error): void;
}

function parseResponse(data: Buffer): Response | Error {
  if (data.length === 0) return { payload: data };
  try {
    return decodeResponse(data);
  } catch (err) {
    return new InternalError(`ttrpc: error unmarshalling response: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A Response as the call's outcome: the payload, or the error its status carries. */
export function responseOutcome(data: Buffer): Buffer | Error {
  const res = parseResponse(data);
  if (res instanceof Error) return res;
  const status = res.status;
  if (status && status.code !== 0) return fromStatus(status.code, status.message, status.details);
  return res.payload as Buffer;
}

export class UnaryCall implements PendingCall {
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;

  constructor(
    readonly id: number,
    private readonly host: CallHost,
    private readonly resolve: (payload: Buffer) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  response(data: Buffer): void {
    this.settle();
    const outcome = responseOutcome(data);
    if (outcome instanceof Error) this.reject(outcome);
    else this.resolve(outcome);
  }

  data(): void {
    this.fail(new InternalError('ttrpc: received Data on a unary call'));
  }

  fail(err: Error): void {
    this.settle();
    this.reject(err);
  }

  cancelled(err: Error): void {
    this.fail(err);
  }

  private settle(): void {
    this.host.forget(this.id);
    if (this.timer) clearTimeout(this.timer);
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
  }
}

/** The client's side of one raw stream. */
export interface RawClientStream {
  /** Sends one message (a Data frame; parts are sent as their concatenation); resolves when the socket can take more. */
  send(message: FrameData): Promise<void>;
  /** Half-closes: tells the server no more messages follow. */
  closeSend(): Promise<void>;
  /**
   * Next message from the server; undefined once the stream ended cleanly.
   * For methods without streamed responses the Response payload is the one message.
   */
  recv(): Promise<Buffer | undefined>;
  /** Forgets the stream, ending our send side (ttrpc has no cancel frame); pending recv() calls reject. */
  cancel(): void;
}

export class ClientStream implements PendingCall, RawClientStream {
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  private readonly queue: RecvQueue;
  private sendClosed = false;
  private ended = false;
  private endError: Error | undefined;

  constructor(
    readonly id: number,
    private readonly host: CallHost,
    private readonly responseStream: boolean,
    queueItems: number,
    sendClosed: boolean,
  ) {
    this.queue = new RecvQueue(host.conn, queueItems, MAX_DATA_LENGTH);
    this.sendClosed = sendClosed;
  }

  response(data: Buffer): void {
    const outcome = responseOutcome(data);
    if (outcome instanceof Error) return this.fail(outcome);
    if (!this.responseStream || outcome.length > 0) this.queue.push(outcome);
    this.finish(undefined);
  }

  data(flags: number, data: Buffer): void {
    if (!this.responseStream) return this.fail(new InternalError('ttrpc: received Data on a method without streamed responses'));
    if (!(flags & Flags.NoData)) this.queue.push(data);
    if (flags & Flags.RemoteClosed) this.finish(undefined);
  }

  fail(err: Error): void {
    if (this.ended) return;
    this.finish(err);
  }

  /** Given up on here (the caller's signal or deadline): the server is told as much as ttrpc can say. */
  cancelled(err: Error): void {
    if (this.ended) return;
    this.endSend();
    this.finish(err);
  }

  send(message: FrameData): Promise<void> {
    if (this.ended) return Promise.reject(this.endError ?? new FailedPreconditionError('ttrpc: stream already finished'));
    if (this.sendClosed) return Promise.reject(new FailedPreconditionError('ttrpc: send on a closed stream'));
    const length = frameDataLength(message);
    if (length > MAX_DATA_LENGTH) return Promise.reject(new ResourceExhaustedError(oversizeMessage(length)));
    const conn = this.host.conn;
    if (!conn.writeFrame(this.id, MessageType.Data, 0, message)) return Promise.reject(new UnavailableError('ttrpc: closed'));
    return conn.writable();
  }

  closeSend(): Promise<void> {
    if (this.sendClosed || this.ended) return Promise.resolve();
    this.sendClosed = true;
    this.host.conn.writeFrame(this.id, MessageType.Data, Flags.RemoteClosed | Flags.NoData);
    return Promise.resolve();
  }

  recv(): Promise<Buffer | undefined> {
    return this.queue.next();
  }

  cancel(): void {
    const err = new CancelledError('ttrpc: stream cancelled');
    // Even a finished stream may still hold unread messages that keep the
    // connection paused; dropping them lets it read again.
    if (this.ended) return this.queue.abort(err);
    this.endSend();
    this.finish(err, true);
  }

  /**
   * ttrpc has no cancel frame: a stream the client walks away from stays open on
   * the server until the connection closes. Ending our send side at least lets a
   * handler waiting on requests (an ingest holding its ref's lock) finish.
   */
  private endSend(): void {
    if (this.sendClosed) return;
    this.sendClosed = true;
    this.host.conn.writeFrame(this.id, MessageType.Data, Flags.RemoteClosed | Flags.NoData);
  }

  private finish(err: Error | undefined, drop = false): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = err;
    this.host.forget(this.id);
    if (this.timer) clearTimeout(this.timer);
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
    if (drop) this.queue.abort(err);
    else this.queue.end(err);
  }
}
