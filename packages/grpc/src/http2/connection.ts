/**
 * The server side of one HTTP/2 connection (RFC 9113) over a socket: frames in,
 * streams out to the caller, and the frames each answer needs written back in
 * as few socket writes as a tick allows. Only what gRPC clients use is served:
 * no push, no priorities (read and ignored), no HTTP/1 upgrade.
 */
import type { Socket } from 'node:net';
import {
  ConnectionError,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ErrorCode,
  FRAME_HEADER,
  Flag,
  FrameType,
  MAX_WINDOW,
  PREFACE,
  Setting,
  frameHeader,
  settingsPayload,
  u32Payload,
} from './frames.js';
import { encodeHeaders, HpackDecoder, HpackError, type HeaderList } from './hpack.js';
import { H2Stream, type RequestHeaders, type StreamHost } from './stream.js';

export interface ConnectionOptions {
  /** Receive window we give each stream. */
  streamWindow: number;
  /** Receive window we give the whole connection. */
  connectionWindow: number;
}

/** A header block (with its CONTINUATIONs) larger than this ends the connection. */
const MAX_HEADER_BLOCK = 256 << 10;
/**
 * Decoded request headers (names, values and 32 bytes each, as RFC 9113 counts) past
 * this are refused with HTTP 431; we advertise it as SETTINGS_MAX_HEADER_LIST_SIZE.
 */
const MAX_HEADER_LIST = 64 << 10;
/** Frames up to this size in all are copied into one buffer for the write. */
const COALESCE_BYTES = 64 << 10;
/** Socket buffer past which stream writers are told to wait. */
const SOCKET_HIGH_BYTES = 4 << 20;
/** Longest a PING ack waits for other frames to travel with. */
const PING_ACK_DELAY_MS = 5;
/** PING acks held at most; one more sends them at once. */
const MAX_HELD_PING_ACKS = 8;

export class H2ServerConnection implements StreamHost {
  private readonly streams = new Map<number, H2Stream>();
  private readonly decoder = new HpackDecoder();
  private readonly blocked = new Set<H2Stream>();
  private input: Buffer[] = [];
  private inputLength = 0;
  private prefaceSeen = false;
  private lastStreamId = 0;
  /** A header block being continued: its stream, flags and fragments so far. */
  private continuing?: { streamId: number; endStream: boolean; fragments: Buffer[]; length: number };
  private sendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private recvWindow: number;
  private uncredited = 0;
  private output: Buffer[] = [];
  private flushScheduled = false;
  /** PING ack frames waiting to go out with the next frames (see holdPingAck). */
  private heldPingAcks: Buffer[] = [];
  private pingAckTimer?: NodeJS.Timeout;
  private goingAway = false;
  private dead = false;

  constructor(
    private readonly socket: Socket,
    private readonly options: ConnectionOptions,
    private readonly onStream: (stream: H2Stream) => void,
  ) {
    this.recvWindow = options.connectionWindow;
    this.queue(
      frameHeader(12, FrameType.Settings, 0, 0),
      settingsPayload([
        [Setting.InitialWindowSize, options.streamWindow],
        [Setting.MaxHeaderListSize, MAX_HEADER_LIST],
      ]),
    );
    const extra = options.connectionWindow - DEFAULT_WINDOW;
    if (extra > 0) this.queue(frameHeader(4, FrameType.WindowUpdate, 0, 0), u32Payload(extra));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onSocketDrain());
    socket.on('error', () => undefined);
    socket.on('close', () => this.onSocketClose());
  }

  get idle(): boolean {
    return this.streams.size === 0;
  }

  /** Graceful: no new streams; the socket ends once the open ones are done. */
  shutdown(): void {
    if (this.goingAway || this.dead) return;
    this.goingAway = true;
    this.goAway(ErrorCode.NoError);
    if (this.idle) this.endSocket();
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---- StreamHost

  sendHeaders(stream: H2Stream, fields: HeaderList | Buffer, endStream: boolean): void {
    const block = Buffer.isBuffer(fields) ? fields : encodeHeaders(fields);
    this.queueHeaderBlock(stream.id, block, endStream);
    if (endStream) this.localDone(stream);
  }

  pump(stream: H2Stream): void {
    if (stream.closed) return;
    while (stream.outQueue.length) {
      const room = Math.min(stream.sendWindow, this.sendWindow, this.peerMaxFrame);
      if (room <= 0) {
        this.blocked.add(stream);
        return;
      }
      const head = stream.outQueue[0]!;
      const piece = head.length <= room ? head : head.subarray(0, room);
      if (piece === head) stream.outQueue.shift();
      else stream.outQueue[0] = head.subarray(room);
      stream.outQueued -= piece.length;
      stream.sendWindow -= piece.length;
      this.sendWindow -= piece.length;
      this.queue(frameHeader(piece.length, FrameType.Data, 0, stream.id), piece);
    }
    this.blocked.delete(stream);
    if (stream.trailers) {
      const trailers = stream.trailers;
      stream.trailers = undefined;
      this.sendHeaders(stream, trailers, true);
    }
    stream.notifyDrain();
  }

  credit(stream: H2Stream, bytes: number): void {
    this.creditConnection(bytes);
    if (stream.remoteEnded || stream.closed) return;
    stream.uncredited += bytes;
    if (stream.uncredited < this.options.streamWindow / 2) return;
    stream.recvWindow += stream.uncredited;
    this.queue(frameHeader(4, FrameType.WindowUpdate, 0, stream.id), u32Payload(stream.uncredited));
    stream.uncredited = 0;
  }

  reset(stream: H2Stream, code: ErrorCode): void {
    this.queue(frameHeader(4, FrameType.RstStream, 0, stream.id), u32Payload(code));
    this.closeStream(stream);
  }

  writable(): boolean {
    return this.socket.writableLength < SOCKET_HIGH_BYTES;
  }

  // ---- input

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    this.input.push(chunk);
    this.inputLength += chunk.length;
    try {
      if (!this.prefaceSeen) {
        if (this.inputLength < PREFACE.length) return;
        if (!this.take(PREFACE.length).equals(PREFACE)) throw new ConnectionError(ErrorCode.ProtocolError, 'not an HTTP/2 connection preface');
        this.prefaceSeen = true;
      }
      while (this.inputLength >= FRAME_HEADER) {
        const header = this.peek(FRAME_HEADER);
        const length = header.readUIntBE(0, 3);
        if (length > DEFAULT_MAX_FRAME) throw new ConnectionError(ErrorCode.FrameSizeError, `frame of ${length} bytes over ${DEFAULT_MAX_FRAME}`);
        if (this.inputLength < FRAME_HEADER + length) break;
        const type = header[3]!;
        const flags = header[4]!;
        const streamId = header.readUInt32BE(5) & 0x7fffffff;
        this.take(FRAME_HEADER);
        this.onFrame(type, flags, streamId, length ? this.take(length) : EMPTY);
        if (this.dead) return;
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.continuing && type !== FrameType.Continuation) throw new ConnectionError(ErrorCode.ProtocolError, 'header block interrupted');
    switch (type) {
      case FrameType.Data:
        return this.onDataFrame(flags, streamId, payload);
      case FrameType.Headers:
        return this.onHeadersFrame(flags, streamId, payload);
      case FrameType.Continuation:
        return this.onContinuation(flags, streamId, payload);
      case FrameType.RstStream: {
        if (!streamId || payload.length !== 4) throw new ConnectionError(ErrorCode.ProtocolError, 'bad RST_STREAM');
        const stream = this.streams.get(streamId);
        if (stream) this.closeStream(stream);
        return;
      }
      case FrameType.Settings:
        return this.onSettings(flags, streamId, payload);
      case FrameType.Ping:
        if (streamId || payload.length !== 8) throw new ConnectionError(ErrorCode.ProtocolError, 'bad PING');
        if (!(flags & Flag.Ack)) this.holdPingAck(payload);
        return;
      case FrameType.GoAway:
        // The client will open no more streams; the ones open finish as usual.
        return;
      case FrameType.WindowUpdate:
        return this.onWindowUpdate(streamId, payload);
      case FrameType.PushPromise:
        throw new ConnectionError(ErrorCode.ProtocolError, 'a client may not push');
      default:
        // PRIORITY and unknown frame types are ignored (RFC 9113 5.5).
        return;
    }
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (!streamId) throw new ConnectionError(ErrorCode.ProtocolError, 'DATA on stream 0');
    this.recvWindow -= payload.length;
    if (this.recvWindow < 0) throw new ConnectionError(ErrorCode.FlowControlError, 'connection window exceeded');
    const data = flags & Flag.Padded ? unpad(payload) : payload;
    const stream = this.streams.get(streamId);
    if (!stream || stream.remoteEnded) {
      if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.ProtocolError, `DATA on idle stream ${streamId}`);
      this.creditConnection(payload.length);
      // Late data for a stream we finished is dropped; one the client had ended is its error.
      if (stream) this.reset(stream, ErrorCode.StreamClosed);
      return;
    }
    stream.recvWindow -= payload.length;
    if (stream.recvWindow < 0) return this.reset(stream, ErrorCode.FlowControlError);
    // Padding is never read by anyone: its window comes back at once.
    if (payload.length > data.length) this.credit(stream, payload.length - data.length);
    stream.receive(data);
    if (flags & Flag.EndStream) this.remoteDone(stream);
  }

  private onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (!streamId) throw new ConnectionError(ErrorCode.ProtocolError, 'HEADERS on stream 0');
    let fragment = flags & Flag.Padded ? unpad(payload) : payload;
    if (flags & Flag.Priority) {
      if (fragment.length < 5) throw new ConnectionError(ErrorCode.FrameSizeError, 'short HEADERS priority');
      fragment = fragment.subarray(5);
    }
    const endStream = (flags & Flag.EndStream) !== 0;
    if (flags & Flag.EndHeaders) return this.onHeaderBlock(streamId, endStream, fragment);
    this.continuing = { streamId, endStream, fragments: [fragment], length: fragment.length };
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const c = this.continuing;
    if (!c || c.streamId !== streamId) throw new ConnectionError(ErrorCode.ProtocolError, 'unexpected CONTINUATION');
    c.fragments.push(payload);
    c.length += payload.length;
    if (c.length > MAX_HEADER_BLOCK) throw new ConnectionError(ErrorCode.EnhanceYourCalm, 'header block too large');
    if (!(flags & Flag.EndHeaders)) return;
    this.continuing = undefined;
    this.onHeaderBlock(streamId, c.endStream, Buffer.concat(c.fragments, c.length));
  }

  private onHeaderBlock(streamId: number, endStream: boolean, block: Buffer): void {
    let fields: HeaderList;
    try {
      fields = this.decoder.decode(block);
    } catch (err) {
      if (err instanceof HpackError) throw new ConnectionError(ErrorCode.CompressionError, `header block: ${err.message}`);
      throw err;
    }
    const existing = this.streams.get(streamId);
    if (existing) {
      // Trailers from the client: they must end its side.
      if (!endStream || existing.remoteEnded) return this.reset(existing, ErrorCode.ProtocolError);
      return this.remoteDone(existing);
    }
    if (streamId <= this.lastStreamId || streamId % 2 === 0) throw new ConnectionError(ErrorCode.ProtocolError, `HEADERS on stream ${streamId}`);
    this.lastStreamId = streamId;
    if (this.goingAway) {
      this.queue(frameHeader(4, FrameType.RstStream, 0, streamId), u32Payload(ErrorCode.RefusedStream));
      return;
    }
    const stream = new H2Stream(streamId, toHeaders(fields), this, this.peerInitialWindow, this.options.streamWindow);
    this.streams.set(streamId, stream);
    if (endStream) stream.receiveEnd();
    if (headerListSize(fields) > MAX_HEADER_LIST) return stream.respond([[':status', '431']], true);
    this.onStream(stream);
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId) throw new ConnectionError(ErrorCode.ProtocolError, 'SETTINGS on a stream');
    if (flags & Flag.Ack) return;
    if (payload.length % 6) throw new ConnectionError(ErrorCode.FrameSizeError, 'SETTINGS length');
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (id === Setting.InitialWindowSize) {
        if (value > MAX_WINDOW) throw new ConnectionError(ErrorCode.FlowControlError, 'initial window too large');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) stream.sendWindow += delta;
      } else if (id === Setting.MaxFrameSize) {
        if (value < DEFAULT_MAX_FRAME || value > 0xffffff) throw new ConnectionError(ErrorCode.ProtocolError, 'bad max frame size');
        this.peerMaxFrame = value;
      }
    }
    this.queue(frameHeader(0, FrameType.Settings, Flag.Ack, 0));
    for (const stream of [...this.streams.values()]) this.pump(stream);
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FrameSizeError, 'WINDOW_UPDATE length');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (!streamId) {
      if (!increment) throw new ConnectionError(ErrorCode.ProtocolError, 'zero window increment');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FlowControlError, 'connection window overflow');
      for (const stream of [...this.blocked]) this.pump(stream);
      return;
    }
    const stream = this.streams.get(streamId);
    if (!stream) return;
    if (!increment) return this.reset(stream, ErrorCode.ProtocolError);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.reset(stream, ErrorCode.FlowControlError);
    this.pump(stream);
  }

  // ---- stream lifecycle

  private remoteDone(stream: H2Stream): void {
    stream.receiveEnd();
    if (stream.localEnded && !stream.trailers && !stream.outQueue.length) this.closeStream(stream);
  }

  private localDone(stream: H2Stream): void {
    if (stream.remoteEnded) return this.closeStream(stream);
    // Answered before the client finished sending: it need not send the rest (RFC 9113 8.1).
    this.reset(stream, ErrorCode.NoError);
  }

  private closeStream(stream: H2Stream): void {
    if (!this.streams.delete(stream.id)) return;
    this.blocked.delete(stream);
    stream.markClosed();
    if (this.goingAway && this.idle) this.endSocket();
  }

  private creditConnection(bytes: number): void {
    this.uncredited += bytes;
    if (this.uncredited < this.options.connectionWindow / 2) return;
    this.recvWindow += this.uncredited;
    this.queue(frameHeader(4, FrameType.WindowUpdate, 0, 0), u32Payload(this.uncredited));
    this.uncredited = 0;
  }

  // ---- output

  private queueHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    const max = this.peerMaxFrame;
    const endFlag = endStream ? Flag.EndStream : 0;
    if (block.length <= max) {
      this.queue(frameHeader(block.length, FrameType.Headers, endFlag | Flag.EndHeaders, streamId), block);
      return;
    }
    for (let at = 0; at < block.length; at += max) {
      const piece = block.subarray(at, at + max);
      const last = at + max >= block.length ? Flag.EndHeaders : 0;
      const type = at === 0 ? FrameType.Headers : FrameType.Continuation;
      this.queue(frameHeader(piece.length, type, (at === 0 ? endFlag : 0) | last, streamId), piece);
    }
  }

  /**
   * grpc-go clients ping after every answer they read (to size their receive window),
   * and the next request usually follows within a millisecond. Acking right away costs
   * a socket write (and a wake-up of the client) per call; the ack goes out with the
   * next frames instead, or alone after PING_ACK_DELAY_MS. HTTP/2 sets no deadline for
   * it, and the clients' keepalive timeouts are seconds long.
   */
  private holdPingAck(payload: Buffer): void {
    this.heldPingAcks.push(Buffer.concat([frameHeader(8, FrameType.Ping, Flag.Ack, 0), payload]));
    if (this.heldPingAcks.length >= MAX_HELD_PING_ACKS) {
      this.queue();
      return;
    }
    this.pingAckTimer ??= setTimeout(() => this.queue(), PING_ACK_DELAY_MS).unref();
  }

  private queue(...buffers: Buffer[]): void {
    if (this.dead) return;
    if (this.heldPingAcks.length) {
      for (const b of this.heldPingAcks) this.output.push(b);
      this.heldPingAcks = [];
      clearTimeout(this.pingAckTimer);
      this.pingAckTimer = undefined;
    }
    for (const b of buffers) this.output.push(b);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Everything a tick produces (an answer's HEADERS, DATA and trailers) goes out in one write.
    process.nextTick(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const out = this.output;
    this.output = [];
    if (this.dead || !out.length) return;
    if (out.length === 1) {
      this.socket.write(out[0]!);
      return;
    }
    let bytes = 0;
    for (const b of out) bytes += b.length;
    if (bytes <= COALESCE_BYTES) {
      this.socket.write(Buffer.concat(out, bytes));
      return;
    }
    // Large answers go out as one writev rather than a copy.
    this.socket.cork();
    for (const b of out) this.socket.write(b);
    this.socket.uncork();
  }

  private onSocketDrain(): void {
    for (const stream of this.streams.values()) stream.notifyDrain();
  }

  private goAway(code: ErrorCode): void {
    this.queue(frameHeader(8, FrameType.GoAway, 0, 0), u32Payload(this.lastStreamId, code));
  }

  private endSocket(): void {
    if (this.output.length) this.flush();
    this.socket.end();
  }

  private fail(err: unknown): void {
    const code = err instanceof ConnectionError ? err.code : ErrorCode.InternalError;
    if (this.prefaceSeen) this.goAway(code);
    this.flush();
    this.dead = true;
    this.socket.end();
    this.onSocketClose();
  }

  private onSocketClose(): void {
    this.dead = true;
    clearTimeout(this.pingAckTimer);
    for (const stream of [...this.streams.values()]) this.closeStream(stream);
  }

  // ---- input buffer

  private peek(n: number): Buffer {
    const first = this.input[0]!;
    return first.length >= n ? first : Buffer.concat(this.input, this.inputLength).subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.input[0]!;
    this.inputLength -= n;
    if (first.length >= n) {
      if (first.length === n) this.input.shift();
      else this.input[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.input);
    this.input = all.length > n ? [all.subarray(n)] : [];
    return all.subarray(0, n);
  }
}

const EMPTY = Buffer.alloc(0);

function unpad(payload: Buffer): Buffer {
  if (!payload.length) throw new ConnectionError(ErrorCode.ProtocolError, 'padded frame without a pad length');
  const pad = payload[0]!;
  if (pad >= payload.length) throw new ConnectionError(ErrorCode.ProtocolError, 'padding longer than the frame');
  return payload.subarray(1, payload.length - pad);
}

function headerListSize(fields: HeaderList): number {
  let size = 0;
  for (const [name, value] of fields) size += name.length + value.length + 32;
  return size;
}

function toHeaders(fields: HeaderList): RequestHeaders {
  const out: RequestHeaders = {};
  for (const [name, value] of fields) {
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}
