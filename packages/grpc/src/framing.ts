/** gRPC's length-prefixed messages: a compressed flag, a 4-byte big-endian length, the bytes. */
import { ResourceExhaustedError, UnimplementedError } from '@boxd/api';

const PREFIX = 5;

export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, PREFIX);
  return out;
}

/** Cuts whole messages out of the DATA chunks of one stream, as they arrive. */
export class MessageReader {
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(private readonly maxMessageSize: number) {}

  /** The messages `chunk` completes, in order. Throws on a message we cannot take. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const out: Buffer[] = [];
    while (this.length >= PREFIX) {
      const prefix = this.peekPrefix();
      // No grpc-encoding is ever accepted, so a compressed message cannot be read.
      if (prefix[0] !== 0) throw new UnimplementedError('grpc: compressed messages are not supported');
      const size = prefix.readUInt32BE(1);
      if (size > this.maxMessageSize) {
        throw new ResourceExhaustedError(`grpc: received message larger than max (${size} vs. ${this.maxMessageSize})`);
      }
      if (this.length < PREFIX + size) break;
      out.push(this.take(PREFIX + size).subarray(PREFIX));
    }
    return out;
  }

  /** Bytes of an unfinished message are left. */
  get partial(): boolean {
    return this.length > 0;
  }

  private peekPrefix(): Buffer {
    const first = this.chunks[0]!;
    return first.length >= PREFIX ? first : Buffer.concat(this.chunks, this.length).subarray(0, PREFIX);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.length -= n;
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.chunks, this.length);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return all.subarray(0, n);
  }
}
