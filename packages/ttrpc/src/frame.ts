/**
 * ttrpc framing: a 10-byte big-endian header (length, stream id, type, flags)
 * followed by `length` bytes of data.
 */

export const HEADER_SIZE = 10;
/** containerd/ttrpc's messageLengthMax (4 << 20). */
export const MAX_DATA_LENGTH = 4 << 20;
/**
 * The first header byte is reserved (always 0 because the maximum is below
 * 16 MiB). A length at or above this means the peer is not speaking ttrpc.
 */
export const RESERVED_LENGTH = 1 << 24;

export const MessageType = {
  Request: 0x01,
  Response: 0x02,
  Data: 0x03,
} as const;

export const Flags = {
  RemoteClosed: 0x01,
  RemoteOpen: 0x02,
  NoData: 0x04,
} as const;

export function oversizeMessage(length: number): string {
  return `message length ${length} exceed maximum message size of ${MAX_DATA_LENGTH}`;
}

export function writeHeader(buf: Buffer, length: number, streamId: number, type: number, flags: number): void {
  buf.writeUInt32BE(length, 0);
  buf.writeUInt32BE(streamId, 4);
  buf[8] = type;
  buf[9] = flags;
}

/** One contiguous buffer holding header and data. */
export function encodeFrame(streamId: number, type: number, flags: number, data?: Uint8Array): Buffer {
  const length = data ? data.length : 0;
  const buf = Buffer.allocUnsafe(HEADER_SIZE + length);
  writeHeader(buf, length, streamId, type, flags);
  if (length) buf.set(data!, HEADER_SIZE);
  return buf;
}

export interface FrameSink {
  frame(streamId: number, type: number, flags: number, data: Buffer): void;
  /** A frame above MAX_DATA_LENGTH whose data has been skipped in full. */
  oversize(streamId: number, type: number, flags: number, length: number): void;
  /** Bytes that cannot be ttrpc; the stream is unusable from here on. */
  corrupt(reason: string): void;
}

/**
 * Incremental frame parser, tolerant of arbitrary chunking. Oversize data is
 * skipped as it arrives rather than buffered, so memory stays bounded by one
 * maximum-size frame plus one socket chunk.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  // Header of the frame whose data is awaited, or -1 while awaiting a header.
  private length = -1;
  private streamId = 0;
  private type = 0;
  private flags = 0;
  private skipping = 0;
  private paused = false;
  private dead = false;

  constructor(private readonly sink: FrameSink) {}

  get isPaused(): boolean {
    return this.paused;
  }

  /** Stop delivering frames (after the current one) until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.drain();
  }

  push(chunk: Buffer): void {
    if (this.dead) return;
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, chunk.length);
      this.skipping -= n;
      if (this.skipping === 0) {
        const length = this.length;
        this.length = -1;
        this.sink.oversize(this.streamId, this.type, this.flags, length);
      }
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.drain();
  }

  /** True when the stream ended in the middle of a frame. */
  get partial(): boolean {
    return this.buffered > 0 || this.skipping > 0 || this.length >= 0;
  }

  private drain(): void {
    while (!this.paused && !this.dead) {
      if (this.length < 0) {
        if (this.buffered < HEADER_SIZE) return;
        const head = this.take(HEADER_SIZE);
        const length = head.readUInt32BE(0);
        this.streamId = head.readUInt32BE(4);
        this.type = head[8]!;
        this.flags = head[9]!;
        if (length >= RESERVED_LENGTH) {
          this.dead = true;
          this.chunks = [];
          this.buffered = 0;
          this.sink.corrupt(`frame header with reserved byte set (length ${length})`);
          return;
        }
        this.length = length;
        if (length > MAX_DATA_LENGTH) {
          const n = Math.min(length, this.buffered);
          this.discard(n);
          this.skipping = length - n;
          if (this.skipping > 0) return;
          this.length = -1;
          this.sink.oversize(this.streamId, this.type, this.flags, length);
          continue;
        }
      }
      if (this.buffered < this.length) return;
      const data = this.take(this.length);
      this.length = -1;
      this.sink.frame(this.streamId, this.type, this.flags, data);
    }
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0) return EMPTY;
    this.buffered -= n;
    if (first!.length > n) {
      this.chunks[0] = first!.subarray(n);
      return first!.subarray(0, n);
    }
    if (first!.length === n) {
      this.chunks.shift();
      return first!;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const want = n - off;
      if (c.length <= want) {
        c.copy(out, off);
        off += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, off, 0, want);
        this.chunks[0] = c.subarray(want);
        off = n;
      }
    }
    return out;
  }

  private discard(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      if (c.length <= n) {
        n -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}

const EMPTY = Buffer.alloc(0);
