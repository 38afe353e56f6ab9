/** A small test service with hand-written codecs, and raw-socket helpers. */
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs/minimal.js';
import { method, type MessageCodec } from '@boxd/api';
import { FrameReader } from '../src/frame.js';

export interface Msg {
  text: string;
  n: number;
}

export const MsgCodec: MessageCodec<Msg> = {
  typeName: 'test.v1.Msg',
  encode(m) {
    const w = protobuf.Writer.create();
    if (m.text) w.uint32(0x0a).string(m.text);
    if (m.n) w.uint32(0x10).int32(m.n);
    return w.finish();
  },
  decode(bytes) {
    const r = protobuf.Reader.create(bytes);
    const m: Msg = { text: '', n: 0 };
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 0x0a) m.text = r.string();
      else if (tag === 0x10) m.n = r.int32();
      else throw new Error(`bad tag ${tag}`);
    }
    return m;
  },
};

const S = 'test.v1.Test';
export const TestService = {
  name: S,
  methods: {
    echo: method(S, 'Echo', MsgCodec, MsgCodec, false, false),
    list: method(S, 'List', MsgCodec, MsgCodec, false, true),
    sum: method(S, 'Sum', MsgCodec, MsgCodec, true, false),
    chat: method(S, 'Chat', MsgCodec, MsgCodec, true, true),
  },
};
export type TestService = typeof TestService;

export function tmpDir(): { dir: string; sock: (name?: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'boxd-ttrpc-'));
  return { dir, sock: (name = 'ttrpc.sock') => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface RawFrame {
  id: number;
  type: number;
  flags: number;
  data: Buffer;
}

/** A bare socket that speaks frames by hand, for malformed-input tests. */
export class RawPeer {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<void>;
  private waiters: Array<() => void> = [];
  private readonly reader = new FrameReader({
    frame: (id, type, flags, data) => {
      this.frames.push({ id, type, flags, data: Buffer.from(data) });
      this.wake();
    },
    oversize: () => {},
    corrupt: () => {},
  });
  bytes = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      // Raw bytes are kept for byte-exact checks of small exchanges only.
      if (this.bytes.length < 65536) this.bytes = Buffer.concat([this.bytes, chunk]);
      this.reader.push(chunk);
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    void this.closed.then(() => this.wake());
  }

  static open(path: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('error', reject);
      s.once('connect', () => resolve(new RawPeer(s)));
    });
  }

  write(bytes: Uint8Array | string): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'hex') : bytes);
  }

  /** Next frame, failing after `ms`. */
  async next(ms = 2000): Promise<RawFrame> {
    const deadline = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.socket.destroyed) throw new Error('socket closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames.shift()!;
  }

  /** Resolves true if nothing arrives within `ms`. */
  async quiet(ms = 150): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.frames.length === 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

export function frameHex(id: number, type: number, flags: number, data: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(10 + data.length);
  b.writeUInt32BE(data.length, 0);
  b.writeUInt32BE(id, 4);
  b[8] = type;
  b[9] = flags;
  Buffer.from(data).copy(b, 10);
  return b;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A hand-driven ttrpc "server": every received frame goes to `onFrame`. */
export async function fakeServer(
  path: string,
  onFrame: (socket: Socket, frame: RawFrame) => void,
): Promise<{ close: () => Promise<void>; sockets: Set<Socket> }> {
  const { createServer } = await import('node:net');
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    const reader = new FrameReader({
      frame: (id, type, flags, data) => onFrame(socket, { id, type, flags, data: Buffer.from(data) }),
      oversize: () => {},
      corrupt: () => socket.destroy(),
    });
    socket.on('data', (c: Buffer) => reader.push(c));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
