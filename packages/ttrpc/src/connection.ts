/**
 * One ttrpc byte stream: frame parsing on the way in, batched frame writes on
 * the way out, read pausing for backpressure, and a single close notification.
 */
import type { Socket } from 'node:net';
import { FrameReader, HEADER_SIZE, encodeFrame, writeHeader, type FrameSink } from './frame.js';
import type { FlowControl } from './queue.js';
import type { Logger } from './logger.js';
import { frameDataLength, type FrameData } from './wire-parts.js';

export interface ConnectionHandler extends FrameSink {
  /** Runs once, after the socket is gone. */
  closed(err: Error | undefined): void;
}

// Frames queued within one tick go out in a single write; beyond this many
// bytes they are written at once so a fast producer cannot pile up memory.
const FLUSH_BYTES = 256 * 1024;
// Below this total, batched frames are concatenated (one copy, one syscall);
// above, they are handed to the socket corked to avoid copying large payloads.
const CONCAT_BYTES = 64 * 1024;
// Data this large is not copied behind its header.
const SEPARATE_DATA_BYTES = 16 * 1024;

const RESOLVED = Promise.resolve();

export interface ConnectionOptions {
  /**
   * Stop reading while more than this many bytes wait to be written, so a
   * peer that sends requests but never reads the answers cannot grow our
   * memory without bound.
   */
  writeBacklogLimit?: number;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
}

function joined(data: FrameData, length: number): Uint8Array {
  return data instanceof Uint8Array ? data : Buffer.concat(data, length);
}

function flushTick(conn: Connection): void {
  conn.flush();
}

export class Connection implements FlowControl {
  private readonly reader: FrameReader;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private pauses = 0;
  private error: Error | undefined;
  private isClosed = false;
  private drainWaiters: Array<() => void> = [];
  private readonly backlogLimit: number;
  private backlogPaused = false;

  constructor(
    readonly socket: Socket,
    private readonly handler: ConnectionHandler,
    private readonly logger: Logger,
    options: ConnectionOptions = {},
  ) {
    this.reader = new FrameReader(handler);
    this.backlogLimit = options.writeBacklogLimit ?? Infinity;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.error ??= err;
      this.logger.debug({ err }, 'ttrpc: socket error');
    });
    socket.on('drain', () => this.onDrain());
    socket.on('close', () => this.onClose());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Queues a complete frame; false if the connection is gone. */
  write(frame: Buffer): boolean {
    if (this.isClosed || !this.socket.writable) return false;
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(flushTick, this);
    }
    return true;
  }

  /** Queues a frame; data given in parts goes out as their concatenation. */
  writeFrame(streamId: number, type: number, flags: number, data?: FrameData): boolean {
    const length = data ? frameDataLength(data) : 0;
    if (!data || length < SEPARATE_DATA_BYTES) return this.write(encodeFrame(streamId, type, flags, data && joined(data, length)));
    if (this.isClosed || !this.socket.writable) return false;
    const head = Buffer.allocUnsafe(HEADER_SIZE);
    writeHeader(head, length, streamId, type, flags);
    // Header and data stay adjacent: all enter the queue in one synchronous step.
    this.pending.push(head);
    for (const part of data instanceof Uint8Array ? [data] : data) if (part.length > 0) this.pending.push(asBuffer(part));
    this.pendingBytes += HEADER_SIZE + length;
    this.flush();
    return true;
  }

  flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    const n = pending.length;
    if (n === 0) return;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.isClosed || !this.socket.writable) return;
    if (n === 1) this.socket.write(pending[0]!);
    else if (total <= CONCAT_BYTES) this.socket.write(Buffer.concat(pending, total));
    else {
      this.socket.cork();
      for (const buf of pending) this.socket.write(buf);
      this.socket.uncork();
    }
    if (!this.backlogPaused && this.socket.writableLength > this.backlogLimit) {
      this.backlogPaused = true;
      this.pauseRead();
    }
  }

  /** Resolves once the socket can take more (or is gone). */
  writable(): Promise<void> {
    if (this.isClosed || !this.socket.writableNeedDrain) return RESOLVED;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  pauseRead(): void {
    if (this.pauses++ === 0) {
      this.reader.pause();
      this.socket.pause();
    }
  }

  resumeRead(): void {
    if (this.pauses === 0 || --this.pauses > 0) return;
    // Deferred: the caller is usually mid-way through taking from a queue the
    // reader would push into.
    process.nextTick(() => {
      if (this.pauses > 0 || this.isClosed) return;
      try {
        this.reader.resume();
      } catch (err) {
        this.handlerFailed(err);
      }
      if (!this.reader.isPaused) this.socket.resume();
    });
  }

  /** Flushes queued frames, then closes. */
  end(): void {
    if (this.isClosed) return;
    this.flush();
    this.socket.end(() => this.socket.destroy());
  }

  destroy(err?: Error): void {
    if (err) this.error ??= err;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.handlerFailed(err);
    }
  }

  // A bug in frame handling must cost this connection, not the process.
  private handlerFailed(err: unknown): void {
    this.logger.error({ err }, 'ttrpc: error handling a frame, closing connection');
    this.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  private onDrain(): void {
    if (this.backlogPaused) {
      this.backlogPaused = false;
      this.resumeRead();
    }
    this.wakeDrainWaiters();
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.reader.partial) this.logger.debug({}, 'ttrpc: connection closed in the middle of a frame');
    this.wakeDrainWaiters();
    this.handler.closed(this.error);
  }
}
