/**
 * One server-side HTTP/2 stream: the request's DATA in, the response out under
 * the peer's flow-control windows. Plain callbacks rather than a node stream:
 * a unary call lives for a fraction of a millisecond and is made dozens of
 * times per container start.
 */
import { ErrorCode } from './frames.js';
import type { HeaderList } from './hpack.js';

export type RequestHeaders = Record<string, string | string[] | undefined>;

/** What a stream needs from its connection. */
export interface StreamHost {
  sendHeaders(stream: H2Stream, fields: HeaderList | Buffer, endStream: boolean): void;
  /** Sends what `stream` has queued as far as the windows allow. */
  pump(stream: H2Stream): void;
  /** `bytes` of this stream's DATA were taken by the reader: give the peer window back. */
  credit(stream: H2Stream, bytes: number): void;
  reset(stream: H2Stream, code: ErrorCode): void;
  /** The socket is taking more: false while its buffer is over the high-water mark. */
  writable(): boolean;
}

/** Response bytes queued per stream past which write() asks the caller to wait for drain. */
const QUEUE_HIGH_BYTES = 1 << 20;

export class H2Stream {
  /** Window the peer gave us for this stream. */
  sendWindow: number;
  /** Response DATA not yet sent, in order. */
  readonly outQueue: Buffer[] = [];
  outQueued = 0;
  /** Trailers to send once outQueue is empty (end() was called). */
  trailers?: HeaderList | Buffer;
  localEnded = false;
  remoteEnded = false;
  closed = false;
  /** Request bytes the peer may still send before we credit more. */
  recvWindow: number;
  /** Request bytes read but not yet given back to the peer's window. */
  uncredited = 0;

  private onData?: (chunk: Buffer) => void;
  private onEnd?: () => void;
  private readonly inbox: Buffer[] = [];
  private endPending = false;
  private paused = false;
  private closeListeners: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private headersSent = false;

  constructor(
    readonly id: number,
    readonly headers: RequestHeaders,
    private readonly host: StreamHost,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Starts delivering request DATA (and its end); what came before is delivered first. */
  consume(onData: (chunk: Buffer) => void, onEnd: () => void): void {
    this.onData = onData;
    this.onEnd = onEnd;
    this.deliver();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.deliver();
  }

  /** Called once when the stream is done, for whatever reason. */
  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeListeners.push(fn);
  }

  respond(fields: HeaderList | Buffer, endStream = false): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    if (endStream) this.localEnded = true;
    this.host.sendHeaders(this, fields, endStream);
  }

  /** Queues response DATA; false when the caller should wait for drained() first. */
  write(data: Buffer): boolean {
    if (this.closed || this.localEnded) return true;
    this.outQueue.push(data);
    this.outQueued += data.length;
    this.host.pump(this);
    return this.outQueued < QUEUE_HIGH_BYTES && this.host.writable();
  }

  /** Resolves when queued DATA is down to where write() would say true again (or the stream closed). */
  drained(): Promise<void> {
    if (this.closed || (this.outQueued < QUEUE_HIGH_BYTES && this.host.writable())) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Ends the response with trailers, after whatever DATA is still queued. */
  end(trailers: HeaderList | Buffer): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.trailers = trailers;
    this.host.pump(this);
  }

  /** The peer's DATA for this stream (padding already taken off). */
  receive(chunk: Buffer): void {
    if (chunk.length) this.inbox.push(chunk);
    this.deliver();
  }

  receiveEnd(): void {
    this.remoteEnded = true;
    this.endPending = true;
    this.deliver();
  }

  /** Queue or socket room again: wake writers waiting in drained(). */
  notifyDrain(): void {
    if (!this.drainWaiters.length || this.outQueued >= QUEUE_HIGH_BYTES || !this.host.writable()) return;
    for (const wake of this.drainWaiters.splice(0)) wake();
  }

  /** Done: both sides ended, reset, or the connection went. */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox.length = 0;
    this.outQueue.length = 0;
    this.outQueued = 0;
    for (const wake of this.drainWaiters.splice(0)) wake();
    for (const fn of this.closeListeners.splice(0)) fn();
  }

  /** Stops the stream from our side (RST_STREAM). */
  reset(code: ErrorCode = ErrorCode.Cancel): void {
    if (!this.closed) this.host.reset(this, code);
  }

  private deliver(): void {
    if (!this.onData) return;
    while (this.inbox.length && !this.paused && !this.closed) {
      const chunk = this.inbox.shift()!;
      this.host.credit(this, chunk.length);
      this.onData(chunk);
    }
    if (this.endPending && !this.inbox.length && !this.paused && !this.closed) {
      this.endPending = false;
      this.onEnd!();
    }
  }
}
