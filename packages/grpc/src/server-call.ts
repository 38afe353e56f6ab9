/**
 * One gRPC call on one HTTP/2 stream: read the request messages, run the
 * handler, write the answers and the status. Everything a call needs and
 * nothing else, since every API call a client makes pays for this path.
 */
import {
  CancelledError,
  DeadlineExceededError,
  InternalError,
  encodeResponse,
  errorCode,
  methodShape,
  toWireMessage,
  type AnyMethod,
  type CallContext,
} from '@boxd/api';
import { frameMessage, MessageReader } from './framing.js';
import { encodeStatusMessage, metadataFromHeaders, timeoutMs } from './wire-headers.js';
import { keepReceivedWire } from './received-wire.js';
import { encodeHeaders } from './http2/hpack.js';
import type { H2Stream, RequestHeaders } from './http2/stream.js';

export type Handler = (...args: unknown[]) => unknown;

export interface Route {
  method: AnyMethod;
  handler: Handler;
}

// abort() without a reason builds a DOMException, stack trace and all: one shared reason.
const CALL_CANCELLED = new CancelledError('grpc: call cancelled');
const CONTENT_TYPE = 'application/grpc+proto';
// The header blocks every successful call sends, encoded once.
const RESPONSE_HEADERS = encodeHeaders([[':status', '200'], ['content-type', CONTENT_TYPE]]);
const OK_TRAILERS = encodeHeaders([['grpc-status', '0']]);
/** Queued request messages past which a streaming call stops reading (HTTP/2 flow control then holds the client). */
const QUEUE_HIGH_BYTES = 4 << 20;

export function serveCall(stream: H2Stream, route: Route, maxMessageSize: number): void {
  new ServerCall(stream, route.method, maxMessageSize).run(route.handler);
}

/** Answers a call the server cannot route, with a status and nothing else. */
export function refuseCall(stream: H2Stream, code: number, message: string): void {
  stream.respond(statusFields(code, message, true), true);
}

function statusFields(code: number, message: string, withHeaders: boolean): Array<[string, string]> {
  const fields: Array<[string, string]> = withHeaders ? [[':status', '200'], ['content-type', CONTENT_TYPE]] : [];
  fields.push(['grpc-status', String(code)]);
  if (message) fields.push(['grpc-message', encodeStatusMessage(message)]);
  return fields;
}

class ServerCall {
  private readonly controller = new AbortController();
  private readonly ctx: CallContext;
  private readonly reader: MessageReader;
  private timer?: NodeJS.Timeout;
  private headersSent = false;
  private finished = false;

  constructor(
    private readonly stream: H2Stream,
    private readonly method: AnyMethod,
    maxMessageSize: number,
  ) {
    const headers: RequestHeaders = stream.headers;
    this.reader = new MessageReader(maxMessageSize);
    const timeout = timeoutMs(headers['grpc-timeout']);
    this.ctx = {
      metadata: metadataFromHeaders(headers),
      signal: this.controller.signal,
      deadline: timeout === undefined ? undefined : Date.now() + timeout,
      transport: 'grpc',
    };
    if (timeout !== undefined) this.timer = setTimeout(() => this.expire(), timeout);
    // Only a call that had not finished is cancelled: dispatching an abort event at the
    // end of every call costs more than a small call's handler.
    stream.onClose(() => {
      clearTimeout(this.timer);
      if (this.finished) return;
      this.finished = true;
      this.controller.abort(CALL_CANCELLED);
    });
  }

  run(handler: Handler): void {
    const shape = methodShape(this.method);
    const work =
      shape === 'unary' || shape === 'server-stream'
        ? this.single().then((request) => handler(request, this.ctx))
        : Promise.resolve().then(() => handler(this.requests(), this.ctx));
    const answered =
      shape === 'unary' || shape === 'client-stream'
        ? work.then((response) => this.send(response ?? {}))
        : work.then((responses) => this.sendAll(responses as AsyncIterable<unknown>));
    answered.then(
      () => this.finish(0, ''),
      (err: unknown) => this.finish(errorCode(err), toWireMessage(err)),
    );
  }

  /** The one request message of a call that does not stream requests. */
  private single(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const messages: Buffer[] = [];
      this.stream.onClose(() => reject(CALL_CANCELLED));
      this.stream.consume(
        (chunk) => {
          try {
            messages.push(...this.reader.push(chunk));
          } catch (err) {
            reject(err);
          }
        },
        () => {
          if (this.reader.partial) return reject(new InternalError('grpc: request ended inside a message'));
          if (messages.length !== 1) return reject(new InternalError(`grpc: expected one request message, got ${messages.length}`));
          try {
            resolve(this.decode(messages[0]!, false));
          } catch (err) {
            reject(err);
          }
        },
      );
    });
  }

  /** Request messages as they arrive; reading pauses while too many wait. */
  private requests(): AsyncIterable<unknown> {
    const queue: Buffer[] = [];
    let queued = 0;
    let ended = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const poke = () => wake?.();
    this.stream.consume(
      (chunk) => {
        if (this.finished) return;
        try {
          for (const m of this.reader.push(chunk)) {
            queue.push(m);
            queued += m.length;
          }
        } catch (err) {
          failure ??= err;
        }
        if (queued > QUEUE_HIGH_BYTES) this.stream.pause();
        poke();
      },
      () => {
        ended = true;
        if (this.reader.partial) failure ??= new InternalError('grpc: request stream ended inside a message');
        poke();
      },
    );
    this.controller.signal.addEventListener('abort', poke, { once: true });
    const next = async (): Promise<IteratorResult<unknown>> => {
      for (;;) {
        const message = queue.shift();
        if (message) {
          queued -= message.length;
          if (queued <= QUEUE_HIGH_BYTES / 2) this.stream.resume();
          return { value: this.decode(message, true), done: false };
        }
        if (failure !== undefined) throw failure;
        if (ended) return { value: undefined, done: true };
        if (this.controller.signal.aborted) throw this.controller.signal.reason;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    };
    return { [Symbol.asyncIterator]: () => ({ next }) };
  }

  private decode(bytes: Buffer, streamed: boolean): unknown {
    let message: unknown;
    try {
      message = this.method.requestType.decode(bytes);
    } catch (err) {
      throw new InternalError(`grpc: error unmarshalling request: ${err instanceof Error ? err.message : String(err)}`);
    }
    // Streamed requests carry the payloads worth relaying as received.
    return streamed ? keepReceivedWire(message, bytes) : message;
  }

  /** Writes one answer; false when the stream wants a drain first. */
  private send(response: unknown): boolean {
    if (this.finished) return true;
    this.sendHeaders();
    return this.stream.write(frameMessage(encodeResponse(this.method.responseType, response as never)));
  }

  private async sendAll(responses: AsyncIterable<unknown>): Promise<void> {
    for await (const response of responses) {
      if (this.finished) return;
      if (!this.send(response)) await this.stream.drained();
    }
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS);
  }

  private finish(code: number, message: string): void {
    if (this.finished || this.stream.closed) return;
    this.finished = true;
    clearTimeout(this.timer);
    if (this.headersSent) this.stream.end(code === 0 && !message ? OK_TRAILERS : statusFields(code, message, false));
    else this.stream.respond(statusFields(code, message, true), true);
  }

  private expire(): void {
    const err = new DeadlineExceededError('context deadline exceeded');
    this.finish(errorCode(err), toWireMessage(err));
    this.controller.abort(err);
  }
}
