/**
 * The HTTP/2 server side frame by frame, from a raw socket: the framings clients
 * may choose (CONTINUATION, padding, priority), flow control both ways, and the
 * faults that end a connection.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { content, type ServiceImplementation } from '@boxd/api';
import { GrpcServer } from '../src/index.js';
import { encodeHeaders, HpackDecoder } from '../src/http2/hpack.js';

const dir = mkdtempSync(join(tmpdir(), 'boxd-h2-'));
const sock = join(dir, 's.sock');
const server = new GrpcServer();

const impl: Partial<ServiceImplementation<typeof content.ContentService>> = {
  Info: async (req) => ({ info: { digest: req.digest, size: req.digest.length } }),
  async *Read(req) {
    for (let i = 0; i < req.size.toNumber(); i++) yield { offset: i, data: Buffer.alloc(100_000, i) };
  },
};

beforeAll(async () => {
  server.addService(content.ContentService, impl as ServiceImplementation<typeof content.ContentService>);
  await server.listen(sock);
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A raw connection: write bytes, read frames back until the server closes or a predicate holds. */
async function rawSession(bytes: Buffer[], until: (frames: Frame[]) => boolean): Promise<{ frames: Frame[]; closed: boolean }> {
  const socket = net.connect(sock);
  await once(socket, 'connect');
  const frames: Frame[] = [];
  let buf = Buffer.alloc(0);
  let closed = false;
  const done = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const length = buf.readUIntBE(0, 3);
        frames.push({ type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5), payload: buf.subarray(9, 9 + length) });
        buf = buf.subarray(9 + length);
      }
      if (until(frames)) resolve();
    });
    socket.on('close', () => {
      closed = true;
      resolve();
    });
    socket.on('error', () => resolve());
  });
  socket.write(Buffer.concat([PREFACE, frame(4, 0, 0), ...bytes]));
  const timer = setTimeout(() => socket.destroy(), 3000);
  await done;
  clearTimeout(timer);
  socket.destroy();
  return { frames, closed };
}

function requestBlock(path: string): Buffer {
  return encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'localhost'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
  ]);
}

function grpcMessage(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

const infoRequest = (digest: string) => grpcMessage(content.InfoRequest.encode({ digest }));
const endedStream = (id: number) => (frames: Frame[]) => frames.some((f) => f.stream === id && f.type === 1 && f.flags & 0x1);

function answer(frames: Frame[], id: number): { fields: Array<[string, string]>; data: Buffer } {
  const decoder = new HpackDecoder();
  const fields: Array<[string, string]> = [];
  const data: Buffer[] = [];
  for (const f of frames.filter((x) => x.stream === id)) {
    if (f.type === 1) fields.push(...decoder.decode(f.payload));
    if (f.type === 0) data.push(f.payload);
  }
  return { fields, data: Buffer.concat(data) };
}

it('takes a header block split over CONTINUATION frames', async () => {
  const block = requestBlock('/containerd.services.content.v1.Content/Info');
  const { frames } = await rawSession(
    [frame(1, 0, 1, block.subarray(0, 10)), frame(9, 0, 1, block.subarray(10, 20)), frame(9, 0x4, 1, block.subarray(20)), frame(0, 0x1, 1, infoRequest('split'))],
    endedStream(1),
  );
  const { fields, data } = answer(frames, 1);
  expect(fields).toContainEqual(['grpc-status', '0']);
  expect(content.InfoResponse.decode(data.subarray(5)).info?.digest).toBe('split');
});

it('takes padded HEADERS with priority and padded DATA, and answers a PING', async () => {
  const block = requestBlock('/containerd.services.content.v1.Content/Info');
  const headers = Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 16]), block, Buffer.alloc(3)]);
  const body = infoRequest('padded');
  const data = Buffer.concat([Buffer.from([7]), body, Buffer.alloc(7)]);
  const ping = Buffer.from('12345678');
  const { frames } = await rawSession([frame(6, 0, 0, ping), frame(1, 0x4 | 0x8 | 0x20, 1, headers), frame(0, 0x1 | 0x8, 1, data)], endedStream(1));
  expect(frames.find((f) => f.type === 6)).toMatchObject({ flags: 1, payload: ping });
  expect(content.InfoResponse.decode(answer(frames, 1).data.subarray(5)).info?.digest).toBe('padded');
});

it('acks a PING with the next frames it sends, or alone within milliseconds', async () => {
  const ping = Buffer.from('abcdefgh');
  const withAnswer = await rawSession([frame(1, 0x4, 1, requestBlock('/containerd.services.content.v1.Content/Info')), frame(0, 0x1, 1, infoRequest('x')), frame(6, 0, 0, ping)], endedStream(1));
  expect(withAnswer.frames.find((f) => f.type === 6)).toMatchObject({ flags: 1, payload: ping });

  const started = Date.now();
  const alone = await rawSession([frame(6, 0, 0, ping)], (fs) => fs.some((f) => f.type === 6));
  expect(alone.frames.find((f) => f.type === 6)).toMatchObject({ flags: 1, payload: ping });
  expect(Date.now() - started).toBeLessThan(1000);
});

it('serves many calls on one connection, in any order of completion', async () => {
  const bytes: Buffer[] = [];
  for (let id = 1; id <= 41; id += 2) {
    bytes.push(frame(1, 0x4, id, requestBlock('/containerd.services.content.v1.Content/Info')), frame(0, 0x1, id, infoRequest(`d${id}`)));
  }
  const { frames } = await rawSession(bytes, (fs) => fs.filter((f) => f.type === 1 && f.flags & 0x1).length === 21);
  for (let id = 1; id <= 41; id += 2) expect(content.InfoResponse.decode(answer(frames, id).data.subarray(5)).info?.digest).toBe(`d${id}`);
});

it('sends no more than a small peer window allows, and the rest as the window opens', async () => {
  // A 1000-byte stream window: each 100 kB message has to wait for the client's WINDOW_UPDATEs.
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(sock), settings: { initialWindowSize: 1000 } });
  try {
    const req = session.request({ ':method': 'POST', ':path': '/containerd.services.content.v1.Content/Read', 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.end(grpcMessage(content.ReadContentRequest.encode({ digest: 'x', size: 5 })));
    await once(req, 'close');
    expect(trailers['grpc-status']).toBe('0');
    const body = Buffer.concat(chunks);
    let at = 0;
    for (let i = 0; i < 5; i++) {
      const length = body.readUInt32BE(at + 1);
      const message = content.ReadContentResponse.decode(body.subarray(at + 5, at + 5 + length));
      expect(Buffer.from(message.data).equals(Buffer.alloc(100_000, i))).toBe(true);
      at += 5 + length;
    }
    expect(at).toBe(body.length);
  } finally {
    session.close();
  }
});

it('answers a bad preface by closing, and a frame over the size limit with GOAWAY FRAME_SIZE_ERROR', async () => {
  const bad = net.connect(sock);
  bad.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  bad.on('data', () => undefined);
  await once(bad, 'close');

  const big = Buffer.alloc(9);
  big.writeUIntBE(20_000, 0, 3);
  const { frames, closed } = await rawSession([big], () => false);
  expect(closed).toBe(true);
  const goAway = frames.find((f) => f.type === 7);
  expect(goAway?.payload.readUInt32BE(4)).toBe(6);
});

it('resets a stream that sends DATA after ending, and goes on serving the connection', async () => {
  const { frames } = await rawSession(
    [
      frame(1, 0x4, 1, requestBlock('/containerd.services.content.v1.Content/Read')),
      frame(0, 0x1, 1, grpcMessage(content.ReadContentRequest.encode({ digest: 'x', size: 0 }))),
      frame(1, 0x4 | 0x1, 3, requestBlock('/containerd.services.content.v1.Content/Info')),
      frame(0, 0, 3, infoRequest('late')),
      frame(1, 0x4, 5, requestBlock('/containerd.services.content.v1.Content/Info')),
      frame(0, 0x1, 5, infoRequest('after')),
    ],
    endedStream(5),
  );
  expect(frames.find((f) => f.type === 3 && f.stream === 3)?.payload.readUInt32BE(0)).toBe(5);
  expect(content.InfoResponse.decode(answer(frames, 5).data.subarray(5)).info?.digest).toBe('after');
});

function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  for (value -= max; value >= 0x80; value >>= 7) out.push((value & 0x7f) | 0x80);
  out.push(value);
  return out;
}

it('refuses a header list over 64 KiB (here grown through the dynamic table) with 431, and serves the next stream', async () => {
  const value = 'v'.repeat(4000);
  // One literal added to the table, then twenty one-byte references to it: ~80 KiB decoded.
  const indexed = Buffer.from([...hpackInt(0, 6, 0x40), ...hpackInt(5, 7, 0), ...Buffer.from('x-big'), ...hpackInt(value.length, 7, 0), ...Buffer.from(value)]);
  const block = Buffer.concat([requestBlock('/containerd.services.content.v1.Content/Info'), indexed, Buffer.alloc(20, 0xbe)]);
  const { frames } = await rawSession(
    [frame(1, 0x4 | 0x1, 1, block), frame(1, 0x4, 3, requestBlock('/containerd.services.content.v1.Content/Info')), frame(0, 0x1, 3, infoRequest('next'))],
    endedStream(3),
  );
  const settings = frames.find((f) => f.type === 4 && !(f.flags & 1))!;
  const advertised = new Map<number, number>();
  for (let i = 0; i < settings.payload.length; i += 6) advertised.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
  expect(advertised.get(6)).toBe(64 << 10);
  expect(answer(frames, 1).fields).toEqual([[':status', '431']]);
  expect(content.InfoResponse.decode(answer(frames, 3).data.subarray(5)).info?.digest).toBe('next');
});
