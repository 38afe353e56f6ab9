/** Server-side state of one stream: its context, receive queue, and how it ends. */
import {
  CancelledError,
  Code,
  DeadlineExceededError,
  FailedPreconditionError,
  ResourceExhaustedError,
  errorCode,
  isBoxdError,
  toWireMessage,
} from '@boxd/api';
import { Flags, HEADER_SIZE, MAX_DATA_LENGTH, MessageType, oversizeMessage } from './frame.js';
import { responseFrame, statusFrame } from './wire.js';
import type { Connection } from './connection.js';
import type { ServerCallContext } from './context.js';
import type { RawServerStream } from './handlers.js';
import type { RecvQueue } from './queue.js';

export interface CallOwner {
  readonly conn: Connection;
  callDone(call: ServerCall): void;
}

// setTimeout cannot wait longer (about 24.8 days); longer deadlines are not armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

function expire(call: ServerCall): void {
  call.expire();
}

export class ServerCall implements RawServerStream {
  done = false;
  queue: RecvQueue | undefined;
  private timer: NodeJS.Timeout | undefined;
  private endReason: unknown;

  constructor(
    readonly id: number,
    private readonly owner: CallOwner,
    readonly ctx: ServerCallContext,
    readonly responseStream: boolean,
  ) {}

  armDeadline(ms: number): void {
    if (ms <= MAX_TIMER_MS) this.timer = setTimeout(expire, Math.max(0, Math.ceil(ms)), this);
  }

  recv(): Promise<Buffer | undefined> {
    if (this.queue) return this.queue.next();
    return Promise.resolve(undefined);
  }

  send(message: Uint8Array): Promise<void> {
    if (this.done) return Promise.reject(this.endReason ?? new CancelledError('ttrpc: stream closed'));
    if (!this.responseStream) {
      return Promise.reject(new FailedPreconditionError('ttrpc: method does not stream responses'));
    }
    if (message.length > MAX_DATA_LENGTH) {
      return Promise.reject(new ResourceExhaustedError(oversizeMessage(message.length)));
    }
    if (!this.owner.conn.writeFrame(this.id, MessageType.Data, 0, message)) {
      return Promise.reject(new CancelledError('ttrpc: connection closed'));
    }
    return this.owner.conn.writable();
  }

  /** The handler returned normally. */
  succeed(payload: Uint8Array | undefined | void): void {
    if (this.done) return;
    const conn = this.owner.conn;
    if (this.responseStream) {
      if (!payload || payload.length === 0) {
        conn.writeFrame(this.id, MessageType.Data, Flags.RemoteClosed | Flags.NoData);
      } else if (payload.length > MAX_DATA_LENGTH) {
        conn.write(statusFrame(this.id, Code.RESOURCE_EXHAUSTED, oversizeMessage(payload.length)));
      } else {
        conn.writeFrame(this.id, MessageType.Data, Flags.RemoteClosed, payload);
      }
    } else {
      const frame = responseFrame(this.id, { payload: payload || undefined });
      const length = frame.length - HEADER_SIZE;
      conn.write(
        length > MAX_DATA_LENGTH ? statusFrame(this.id, Code.RESOURCE_EXHAUSTED, oversizeMessage(length)) : frame,
      );
    }
    this.finish(undefined);
  }

  /** The handler threw: the error goes back as a status. */
  fail(err: unknown): void {
    if (this.done) return;
    this.owner.conn.write(statusFrame(this.id, errorCode(err), toWireMessage(err), isBoxdError(err) ? err.details : []));
    this.finish(err);
  }

  /** Ends the call without answering (the peer is gone or was already answered). */
  abort(reason: unknown): void {
    if (this.done) return;
    this.ctx.abort(reason);
    this.finish(reason);
  }

  expire(): void {
    if (this.done) return;
    const err = new DeadlineExceededError('context deadline exceeded');
    this.owner.conn.write(statusFrame(this.id, Code.DEADLINE_EXCEEDED, err.message));
    this.ctx.abort(err);
    this.finish(err);
  }

  private finish(reason: unknown): void {
    this.done = true;
    this.endReason = reason;
    if (this.timer) clearTimeout(this.timer);
    // Nobody will read what is queued; dropping it also lifts any read pause.
    this.queue?.abort(reason ?? new CancelledError('ttrpc: stream closed'));
    this.owner.callDone(this);
  }
}
