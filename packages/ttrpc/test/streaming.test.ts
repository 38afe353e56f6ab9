import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Code,
  InvalidArgumentError,
  NotFoundError,
  errorCode,
  type ServiceClient,
  type ServiceImplementation,
} from '@boxd/api';
import { TtrpcServer } from '../src/server.js';
import { TtrpcClient } from '../src/client.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../src/envelope.js';

const encodeResponseBytes = (m: Partial<Msg>) => encodeResponse({ payload: MsgCodec.encode(m) });
import { Flags, MAX_DATA_LENGTH, MessageType } from '../src/frame.js';
import { RecvQueue } from '../src/queue.js';
import { withWireParts } from '../src/wire-parts.js';
import { MsgCodec, RawPeer, TestService, fakeServer, frameHex, sleep, tmpDir, type Msg, type RawFrame } from './fixtures.js';

const state = { listSent: 0, gate: Promise.resolve(), chatsEnded: 0 };

const impl: ServiceImplementation<TestService> = {
  echo: async (req) => req,
  async *list(req) {
    const [cmd, arg] = req.text.split(':');
    state.listSent = 0;
    for (let i = 0; i < req.n; i++) {
      if (cmd === 'fail-at' && i === Number(arg)) throw new NotFoundError(`item ${i}`);
      if (cmd === 'slow') await sleep(2);
      state.listSent++;
      yield { n: i, text: req.text };
    }
  },
  sum: async (reqs) => {
    await state.gate;
    let n = 0;
    let count = 0;
    for await (const r of reqs) {
      if (r.text === 'fail') throw new InvalidArgumentError('bad item');
      if (r.text === 'early') return { text: 'early', n };
      n += r.n;
      count++;
      if (r.text === 'slow') await sleep(1);
    }
    return { n, text: String(count) };
  },
  async *chat(reqs) {
    try {
      for await (const r of reqs) {
        if (r.text === 'fail') throw new NotFoundError('no chat');
        yield { text: r.text.toUpperCase(), n: r.n * 2 };
      }
    } finally {
      state.chatsEnded++;
    }
  },
};

const env = tmpDir();
const path = env.sock();
const server = new TtrpcServer({ streamQueueSize: 4 });
let client: TtrpcClient;
let svc: ServiceClient<TestService>;

beforeAll(async () => {
  server.addService(TestService, impl);
  await server.listen(path);
  client = await TtrpcClient.connect(path, { streamQueueSize: 4 });
  svc = client.service(TestService);
});

afterAll(async () => {
  await client.close();
  await server.close({ graceful: false });
  env.cleanup();
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('server streaming', () => {
  it('delivers every message in order', async () => {
    const got = await collect(svc.list({ n: 5, text: 'a' }));
    expect(got.map((m) => m.n)).toEqual([0, 1, 2, 3, 4]);
  });

  it('starts even when the request encodes to zero bytes', async () => {
    expect(await collect(svc.list({}))).toEqual([]);
  });

  it('surfaces an error raised mid-stream after the messages before it', async () => {
    const got: Msg[] = [];
    const err = await rejection(
      (async () => {
        for await (const m of svc.list({ n: 10, text: 'fail-at:3' })) got.push(m);
      })(),
    );
    expect(got.map((m) => m.n)).toEqual([0, 1, 2]);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe('item 3');
  });

  it('lets a consumer break out early and keeps the connection usable', async () => {
    let seen = 0;
    for await (const m of svc.list({ n: 200, text: 'slow' })) {
      seen = m.n;
      if (m.n === 2) break;
    }
    expect(seen).toBe(2);
    expect(await svc.echo({ text: 'alive', n: 3 })).toEqual({ text: 'alive', n: 3 });
  });

  it('keeps a slow consumer lossless with a bounded queue', async () => {
    let i = 0;
    for await (const m of svc.list({ n: 300, text: 'bulk' })) {
      expect(m.n).toBe(i++);
      if (i % 50 === 0) await sleep(5);
    }
    expect(i).toBe(300);
  });

  it('is iterable only once', () => {
    const it = svc.list({ n: 1 });
    void it[Symbol.asyncIterator]().return?.();
    expect(() => it[Symbol.asyncIterator]()).toThrow(/only once/);
  });
});

describe('client streaming', () => {
  it('sums what the client sends', async () => {
    const call = svc.sum();
    for (let i = 1; i <= 10; i++) await call.send({ n: i });
    expect(await call.finish()).toEqual({ n: 55, text: '10' });
  });

  it('reports a handler error to finish() and to later sends', async () => {
    const call = svc.sum();
    await call.send({ n: 1 });
    await call.send({ text: 'fail' });
    const err = await rejection(call.finish());
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toBe('bad item');
    expect(errorCode(await rejection(call.send({ n: 2 })))).toBe(Code.INVALID_ARGUMENT);
  });

  it('returns a response the server sent before the client finished', async () => {
    const call = svc.sum();
    await call.send({ n: 4 });
    await call.send({ text: 'early' });
    await sleep(20);
    expect(await call.finish()).toEqual({ text: 'early', n: 4 });
  });

  it('applies backpressure instead of buffering without bound', async () => {
    let open!: () => void;
    state.gate = new Promise<void>((r) => (open = r));
    const call = svc.sum();
    for (let i = 0; i < 500; i++) void call.send({ n: 1, text: 'slow' });
    await sleep(50);
    // While the handler is not reading, its queue stays at the bound and the
    // server has stopped reading the connection.
    type Internals = {
      connections: Set<{ conn: { socket: { isPaused(): boolean } }; calls: Map<number, { responseStream: boolean; queue?: { items: unknown[] } }> }>;
    };
    const sums = [...(server as unknown as Internals).connections].flatMap((c) =>
      [...c.calls.values()].filter((call) => !call.responseStream).map((call) => ({ c, call })),
    );
    expect(sums).toHaveLength(1);
    expect(sums[0]!.call.queue!.items.length).toBe(4);
    expect(sums[0]!.c.conn.socket.isPaused()).toBe(true);
    open();
    expect(await call.finish()).toEqual({ n: 500, text: '500' });
    state.gate = Promise.resolve();
  });
});

describe('bidirectional streaming', () => {
  it('interleaves sends and receives', async () => {
    const call = svc.chat();
    await call.send({ text: 'a', n: 1 });
    expect(await call.recv()).toEqual({ text: 'A', n: 2 });
    await call.send({ text: 'b', n: 2 });
    expect(await call.recv()).toEqual({ text: 'B', n: 4 });
    await call.end();
    expect(await call.recv()).toBeUndefined();
  });

  it('can be iterated while sending', async () => {
    const call = svc.chat();
    const received = collect(call);
    for (const t of ['x', 'y', 'z']) await call.send({ text: t, n: 1 });
    await call.end();
    expect((await received).map((m) => m.text)).toEqual(['X', 'Y', 'Z']);
  });

  it('surfaces an error mid-stream after earlier replies', async () => {
    const call = svc.chat();
    await call.send({ text: 'ok', n: 1 });
    await call.send({ text: 'fail', n: 1 });
    expect(await call.recv()).toEqual({ text: 'OK', n: 2 });
    const err = await rejection(call.recv());
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe('no chat');
  });

  it('cancel() forgets the stream locally', async () => {
    const call = svc.chat();
    await call.send({ text: 'q', n: 1 });
    call.cancel();
    expect(errorCode(await rejection(call.recv()))).toBe(Code.CANCELLED);
    expect(await svc.echo({ text: 'fine' })).toEqual({ text: 'fine', n: 0 });
  });
});

describe('messages sent in wire form', () => {
  it('go out as their parts, not re-encoded from the object', async () => {
    const call = svc.chat();
    const big = MsgCodec.encode({ text: 'w'.repeat(40_000), n: 3 });
    await call.send(withWireParts({ text: 'ignored', n: 1 }, [big.subarray(0, 10), new Uint8Array(0), big.subarray(10)]));
    expect(await call.recv()).toEqual({ text: 'W'.repeat(40_000), n: 6 });
    const small = MsgCodec.encode({ text: 'part', n: 2 });
    await call.send(withWireParts({ text: 'ignored', n: 1 }, [small.subarray(0, 3), small.subarray(3)]));
    expect(await call.recv()).toEqual({ text: 'PART', n: 4 });
    await call.end();
    expect(await call.recv()).toBeUndefined();
  });

  it('lose the wire form when copied, so a changed copy is encoded', async () => {
    const call = svc.chat();
    const marked = withWireParts({ text: 'old', n: 1 }, [MsgCodec.encode({ text: 'old', n: 1 })]);
    await call.send({ ...marked, text: 'new' });
    expect(await call.recv()).toEqual({ text: 'NEW', n: 2 });
    await call.end();
  });

  it('are refused past the frame limit, counting every part', async () => {
    const stream = client.stream(TestService.name, 'Chat', { requestStream: true, responseStream: true });
    const half = new Uint8Array(MAX_DATA_LENGTH / 2 + 1);
    expect(errorCode(await rejection(stream.send([half, half])))).toBe(Code.RESOURCE_EXHAUSTED);
    stream.cancel();
  });
});

describe('streaming wire format', () => {
  it('client opens with the flags and frames of the Go client', async () => {
    const sock = env.sock('wire.sock');
    const got: RawFrame[] = [];
    const fake = await fakeServer(sock, (s, f) => {
      got.push(f);
      if (f.type === MessageType.Request) {
        const req = decodeRequest(f.data);
        if (req.method === 'List') {
          s.write(frameHex(f.id, MessageType.Data, 0, MsgCodec.encode({ n: 1 })));
          // A final message riding on the close frame, as Go may send.
          s.write(frameHex(f.id, MessageType.Data, Flags.RemoteClosed, MsgCodec.encode({ n: 2 })));
        }
      }
      if (f.type === MessageType.Data && f.flags & Flags.RemoteClosed) {
        s.write(frameHex(f.id, MessageType.Response, 0));
      }
    });
    const c = await TtrpcClient.connect(sock);
    const s = c.service(TestService);
    expect((await collect(s.list({ n: 3 }))).map((m) => m.n)).toEqual([1, 2]);
    const sum = s.sum();
    await sum.send({ n: 1 });
    await sum.send({});
    expect(await sum.finish()).toEqual({ n: 0, text: '' });
    expect(got.map((f) => [f.id, f.type, f.flags, f.data.length])).toEqual([
      [1, MessageType.Request, Flags.RemoteClosed, got[0]!.data.length],
      [3, MessageType.Request, Flags.RemoteOpen, got[1]!.data.length],
      [3, MessageType.Data, 0, 2],
      [3, MessageType.Data, 0, 0],
      [3, MessageType.Data, Flags.RemoteClosed | Flags.NoData, 0],
    ]);
    expect(MsgCodec.decode(decodeRequest(got[0]!.data).payload)).toEqual({ n: 3, text: '' });
    expect(decodeRequest(got[1]!.data).payload.length).toBe(0);
    await c.close();
    await fake.close();
  });

  it('abandoning a finished stream whose queue is full does not stall the connection', async () => {
    const sock = env.sock('stall.sock');
    const fake = await fakeServer(sock, (s, f) => {
      const req = decodeRequest(f.data);
      if (req.method === 'List') {
        // Four messages fill a queue of four; the last one also ends the stream.
        const frames = [1, 2, 3].map((n) => frameHex(f.id, MessageType.Data, 0, MsgCodec.encode({ n })));
        frames.push(frameHex(f.id, MessageType.Data, Flags.RemoteClosed, MsgCodec.encode({ n: 4 })));
        s.write(Buffer.concat(frames));
      } else {
        s.write(frameHex(f.id, MessageType.Response, 0, encodeResponseBytes({ n: 99 })));
      }
    });
    const c = await TtrpcClient.connect(sock, { streamQueueSize: 4 });
    const s = c.service(TestService);
    const it = s.list({})[Symbol.asyncIterator]();
    await sleep(50);
    await it.return!();
    expect(await s.echo({})).toEqual({ text: '', n: 99 });
    await c.close();
    await fake.close();
  });

  it('server takes a non-empty Request payload as the first client message and zero-length Data as a message', async () => {
    const peer = await RawPeer.open(path);
    peer.write(frameHex(1, 1, Flags.RemoteOpen, encodeRequest({ service: TestService.name, method: 'Sum', payload: MsgCodec.encode({ n: 5 }) })));
    peer.write(frameHex(1, 3, 0, MsgCodec.encode({ n: 1 })));
    peer.write(frameHex(1, 3, 0));
    peer.write(frameHex(1, 3, Flags.NoData));
    peer.write(frameHex(1, 3, Flags.RemoteClosed | Flags.NoData));
    const f = await peer.next();
    expect(f).toMatchObject({ id: 1, type: MessageType.Response, flags: 0 });
    const res = decodeResponse(f.data);
    expect(res.status).toBeUndefined();
    expect(MsgCodec.decode(res.payload)).toEqual({ n: 6, text: '3' });
    peer.destroy();
  });

  it('server treats a flags-0 Request to a client-streaming method as already closed', async () => {
    const peer = await RawPeer.open(path);
    peer.write(frameHex(1, 1, 0, encodeRequest({ service: TestService.name, method: 'Sum' })));
    const f = await peer.next();
    expect(MsgCodec.decode(decodeResponse(f.data).payload)).toEqual({ n: 0, text: '0' });
    peer.destroy();
  });

  it('server ends a bidi stream with Data(RC|ND) and errors with a Response', async () => {
    const peer = await RawPeer.open(path);
    peer.write(frameHex(1, 1, Flags.RemoteOpen, encodeRequest({ service: TestService.name, method: 'Chat' })));
    peer.write(frameHex(1, 3, 0, MsgCodec.encode({ text: 'hi', n: 1 })));
    peer.write(frameHex(1, 3, Flags.RemoteClosed | Flags.NoData));
    const a = await peer.next();
    const b = await peer.next();
    expect([a.type, a.flags, MsgCodec.decode(a.data)]).toEqual([3, 0, { text: 'HI', n: 2 }]);
    expect([b.type, b.flags, b.data.length]).toEqual([3, Flags.RemoteClosed | Flags.NoData, 0]);
    peer.write(frameHex(3, 1, Flags.RemoteOpen, encodeRequest({ service: TestService.name, method: 'Chat' })));
    peer.write(frameHex(3, 3, 0, MsgCodec.encode({ text: 'fail' })));
    const c = await peer.next();
    expect([c.id, c.type, c.flags]).toEqual([3, MessageType.Response, 0]);
    expect(decodeResponse(c.data).status).toEqual({ code: 5, message: 'no chat: not found', details: [] });
    peer.destroy();
  });
});

describe('RecvQueue', () => {
  it('pauses the connection at its bound and resumes once drained', async () => {
    const calls: string[] = [];
    const q = new RecvQueue({ pauseRead: () => calls.push('pause'), resumeRead: () => calls.push('resume') }, 3, 1 << 20);
    for (let i = 0; i < 3; i++) q.push(Buffer.from([i]));
    expect(calls).toEqual(['pause']);
    expect([...(await q.next())!]).toEqual([0]);
    expect(calls).toEqual(['pause', 'resume']);
    q.end();
    expect([...(await q.next())!]).toEqual([1]);
    expect([...(await q.next())!]).toEqual([2]);
    expect(await q.next()).toBeUndefined();
  });

  it('pauses on bytes too, and abort releases the pause', () => {
    const calls: string[] = [];
    const q = new RecvQueue({ pauseRead: () => calls.push('pause'), resumeRead: () => calls.push('resume') }, 100, 10);
    q.push(Buffer.alloc(11));
    expect(calls).toEqual(['pause']);
    q.abort(new Error('gone'));
    expect(calls).toEqual(['pause', 'resume']);
  });
});

describe('a stream the client gives up on', () => {
  // ttrpc has no cancel frame: without the client ending its side, a handler waiting
  // for requests would wait until the connection closed (an ingest would keep its lock).
  it('ends on the server when cancelled or aborted, the connection staying open', async () => {
    const before = state.chatsEnded;
    const cancelled = svc.chat();
    await cancelled.send({ text: 'a', n: 1 });
    expect((await cancelled.recv())?.text).toBe('A');
    cancelled.cancel();
    await expect.poll(() => state.chatsEnded, { timeout: 2000 }).toBe(before + 1);

    const controller = new AbortController();
    const aborted = svc.chat({ signal: controller.signal });
    await aborted.send({ text: 'b', n: 1 });
    expect((await aborted.recv())?.text).toBe('B');
    controller.abort();
    await expect.poll(() => state.chatsEnded, { timeout: 2000 }).toBe(before + 2);
    expect((await svc.echo({ text: 'still here', n: 0 })).text).toBe('still here');
  });
});
