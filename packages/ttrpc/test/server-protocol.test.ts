import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError, taskV2, type CallContext, type ServiceImplementation } from '@boxd/api';
import { TtrpcServer } from '../src/server.js';
import { decodeResponse, encodeRequest } from '../src/envelope.js';
import { MAX_DATA_LENGTH } from '../src/frame.js';
import { MsgCodec, RawPeer, TestService, frameHex, sleep, tmpDir, type Msg } from './fixtures.js';

const seen: { ctx?: CallContext } = {};

const impl: ServiceImplementation<TestService> = {
  echo: async (req) => {
    if (req.text === 'fail') throw new NotFoundError('thing');
    return { text: req.text, n: req.n + 1 };
  },
  async *list(req) {
    for (let i = 0; i < req.n; i++) yield { n: i };
  },
  sum: async (reqs) => {
    let n = 0;
    for await (const r of reqs) n += r.n;
    return { n };
  },
  async *chat(reqs) {
    for await (const r of reqs) yield r;
  },
};

const env = tmpDir();
const path = env.sock();
const server = new TtrpcServer();

beforeAll(async () => {
  server.addService(TestService, impl);
  server.addService(taskV2.TaskService, {
    Connect: async (_req: taskV2.ConnectRequest, ctx: CallContext) => {
      seen.ctx = ctx;
      return { shimPid: 19224, taskPid: 19245 };
    },
  } as unknown as ServiceImplementation<typeof taskV2.TaskService>);
  await server.listen(path);
});

afterAll(async () => {
  await server.close({ graceful: false });
  env.cleanup();
});

function request(id: number, service: string, method: string, payload?: Uint8Array, flags = 0): Buffer {
  return frameHex(id, 1, flags, encodeRequest({ service, method, payload }));
}

function echoReq(id: number, m: Partial<Msg>, flags = 0): Buffer {
  return request(id, TestService.name, 'Echo', MsgCodec.encode(m), flags);
}

function status(data: Buffer) {
  return decodeResponse(data).status;
}

async function expectUsable(peer: RawPeer, id: number): Promise<void> {
  peer.write(echoReq(id, { text: 'still', n: 1 }));
  const f = await peer.next();
  expect(f.id).toBe(id);
  expect(MsgCodec.decode(decodeResponse(f.data).payload)).toEqual({ text: 'still', n: 2 });
}

describe('server wire behaviour', () => {
  it('answers the worked example exactly like the Go shim', async () => {
    const peer = await RawPeer.open(path);
    peer.write(
      '000000550000000101000a17636f6e7461696e6572642e7461736b2e76322e5461736b1207436f6e6e6563741a040a0274322080e497d0122a250a1a636f6e7461696e6572642d6e616d6573706163652d7474727063120764656661756c74',
    );
    await peer.next();
    expect(peer.bytes.toString('hex')).toBe('0000000a00000001020012080898960110ad9601');
    expect(seen.ctx!.metadata['containerd-namespace-ttrpc']).toEqual(['default']);
    expect(seen.ctx!.transport).toBe('ttrpc');
    expect(seen.ctx!.deadline! - Date.now()).toBeGreaterThan(4000);
    expect(seen.ctx!.deadline! - Date.now()).toBeLessThanOrEqual(5000);
    peer.destroy();
  });

  it('answers an unknown service with the exact bytes of section 6 and stays open', async () => {
    const peer = await RawPeer.open(path);
    peer.write(request(1, 'foo.Bar', 'Baz'));
    await peer.next();
    expect(peer.bytes.toString('hex')).toBe('00000015000000010200' + '0a13080c120f7365727669636520666f6f2e426172');
    await expectUsable(peer, 3);
    peer.destroy();
  });

  it('answers an unknown method with UNIMPLEMENTED "method X"', async () => {
    const peer = await RawPeer.open(path);
    peer.write(request(1, TestService.name, 'Nope'));
    const f = await peer.next();
    expect(f).toMatchObject({ id: 1, type: 2, flags: 0 });
    expect(status(f.data)).toEqual({ code: 12, message: 'method Nope', details: [] });
    peer.destroy();
  });

  it('sends successful responses without a status field', async () => {
    const peer = await RawPeer.open(path);
    peer.write(echoReq(1, { text: 'hi', n: 1 }));
    const f = await peer.next();
    expect(f.data.toString('hex')).toBe('1206' + '0a0268691002');
    peer.write(echoReq(3, {}));
    const empty = await peer.next();
    expect(empty.data.toString('hex')).toBe('12021001');
    peer.destroy();
  });

  it('maps handler errors to a status with the errdefs suffix', async () => {
    const peer = await RawPeer.open(path);
    peer.write(echoReq(1, { text: 'fail' }));
    expect(status((await peer.next()).data)).toEqual({ code: 5, message: 'thing: not found', details: [] });
    peer.destroy();
  });

  it('rejects even stream ids on the same id and keeps the connection', async () => {
    const peer = await RawPeer.open(path);
    peer.write(echoReq(2, { text: 'x' }));
    const f = await peer.next();
    expect(f.id).toBe(2);
    expect(status(f.data)).toEqual({ code: 3, message: 'StreamID must be odd for client initiated streams', details: [] });
    await expectUsable(peer, 1);
    peer.destroy();
  });

  it('rejects re-used and decreasing stream ids', async () => {
    const peer = await RawPeer.open(path);
    await expectUsable(peer, 5);
    peer.write(echoReq(5, { text: 'again' }));
    let f = await peer.next();
    expect(f.id).toBe(5);
    expect(status(f.data)).toEqual({ code: 3, message: 'StreamID cannot be re-used and must increment', details: [] });
    peer.write(echoReq(3, { text: 'lower' }));
    f = await peer.next();
    expect(f.id).toBe(3);
    expect(status(f.data)?.message).toBe('StreamID cannot be re-used and must increment');
    await expectUsable(peer, 7);
    peer.destroy();
  });

  it('rejects Data for a stream that is not active', async () => {
    const peer = await RawPeer.open(path);
    peer.write(frameHex(9, 3, 0, MsgCodec.encode({ n: 1 })));
    const f = await peer.next();
    expect(f.id).toBe(9);
    expect(status(f.data)).toEqual({ code: 3, message: 'StreamID is no longer active', details: [] });
    await expectUsable(peer, 11);
    peer.destroy();
  });

  it('rejects a close Data frame that carries data, ending that stream', async () => {
    const peer = await RawPeer.open(path);
    peer.write(request(1, TestService.name, 'Sum', undefined, 0x02));
    peer.write(frameHex(1, 3, 0, MsgCodec.encode({ n: 4 })));
    peer.write(frameHex(1, 3, 0x01, MsgCodec.encode({ n: 5 })));
    const f = await peer.next();
    expect(f).toMatchObject({ id: 1, type: 2 });
    expect(status(f.data)).toEqual({ code: 3, message: 'data close message cannot include data', details: [] });
    expect(await peer.quiet()).toBe(true);
    peer.destroy();
  });

  it('answers an undecodable Request with INVALID_ARGUMENT "unmarshal request error"', async () => {
    const peer = await RawPeer.open(path);
    peer.write(frameHex(1, 1, 0, Buffer.from('0a05616263', 'hex')));
    const f = await peer.next();
    expect(status(f.data)?.code).toBe(3);
    expect(status(f.data)?.message).toMatch(/^unmarshal request error: index out of range/);
    await expectUsable(peer, 3);
    peer.destroy();
  });

  it('answers an undecodable payload with INTERNAL "ttrpc: error unmarshalling payload"', async () => {
    const peer = await RawPeer.open(path);
    peer.write(request(1, TestService.name, 'Echo', Buffer.from('1801', 'hex')));
    const f = await peer.next();
    expect(status(f.data)).toEqual({ code: 13, message: 'ttrpc: error unmarshalling payload: bad tag 24', details: [] });
    peer.destroy();
  });

  it('discards an oversize frame, answers RESOURCE_EXHAUSTED on its id, and stays usable', async () => {
    const peer = await RawPeer.open(path);
    const length = MAX_DATA_LENGTH + 10;
    const head = Buffer.alloc(10);
    head.writeUInt32BE(length, 0);
    head.writeUInt32BE(1, 4);
    head[8] = 1;
    peer.write(head);
    // Sent in pieces: the server must skip exactly `length` bytes.
    const piece = Buffer.alloc(1 << 20, 0x41);
    for (let left = length; left > 0; left -= piece.length) peer.write(piece.subarray(0, Math.min(left, piece.length)));
    const f = await peer.next(5000);
    expect(f).toMatchObject({ id: 1, type: 2, flags: 0 });
    expect(status(f.data)).toEqual({
      code: 8,
      message: `message length ${length} exceed maximum message size of 4194304`,
      details: [],
    });
    await expectUsable(peer, 3);
    peer.destroy();
  });

  it('accepts a frame of exactly the maximum size', async () => {
    const peer = await RawPeer.open(path);
    const text = 'x'.repeat(MAX_DATA_LENGTH - 200);
    peer.write(echoReq(1, { text }));
    const f = await peer.next(5000);
    expect(MsgCodec.decode(decodeResponse(f.data).payload).text.length).toBe(text.length);
    peer.destroy();
  });

  it('ignores unknown message types and Response frames', async () => {
    const peer = await RawPeer.open(path);
    peer.write(frameHex(1, 0x07, 0, Buffer.from('abcd', 'hex')));
    peer.write(frameHex(1, 0x02, 0));
    expect(await peer.quiet()).toBe(true);
    await expectUsable(peer, 1);
    peer.destroy();
  });

  it('survives a truncated frame followed by close', async () => {
    const peer = await RawPeer.open(path);
    peer.write(echoReq(1, { text: 'whole' }).subarray(0, 14));
    await sleep(20);
    peer.destroy();
    const other = await RawPeer.open(path);
    await expectUsable(other, 1);
    other.destroy();
  });

  it('closes the connection on garbage bytes and keeps serving others', async () => {
    const peer = await RawPeer.open(path);
    peer.write(Buffer.from('GET / HTTP/1.1\r\nHost: boxd\r\n\r\n'));
    await peer.closed;
    expect(peer.frames).toEqual([]);
    const other = await RawPeer.open(path);
    await expectUsable(other, 1);
    other.destroy();
  });

  it('serves a server-streaming Request (remote closed) ending with Data(RC|ND)', async () => {
    const peer = await RawPeer.open(path);
    peer.write(request(1, TestService.name, 'List', MsgCodec.encode({ n: 2 }), 0x01));
    const frames = [await peer.next(), await peer.next(), await peer.next()];
    expect(frames.map((f) => [f.type, f.flags])).toEqual([
      [3, 0],
      [3, 0],
      [3, 0x05],
    ]);
    expect(frames.map((f) => MsgCodec.decode(f.data).n)).toEqual([0, 1, 0]);
    expect(frames[2]!.data.length).toBe(0);
    peer.destroy();
  });
});

describe('server write backlog', () => {
  it('stops reading requests from a peer that does not read its responses', async () => {
    const sock = env.sock('backlog.sock');
    let handled = 0;
    const big = 'y'.repeat(1 << 20);
    const srv = new TtrpcServer({ writeBacklogLimit: 2 << 20 });
    srv.addService(TestService, {
      ...impl,
      echo: async () => {
        handled++;
        return { text: big };
      },
    });
    await srv.listen(sock);
    const peer = await RawPeer.open(sock);
    peer.socket.pause();
    // One request per socket read: the backlog is checked between reads.
    for (let i = 0; i < 60; i++) {
      peer.write(echoReq(2 * i + 1, { n: i }));
      await sleep(3);
    }
    await sleep(100);
    // Kernel buffers hold a little; the server must not have answered everything into memory.
    expect(handled).toBeGreaterThan(0);
    expect(handled).toBeLessThan(20);
    peer.socket.resume();
    for (let i = 0; i < 60; i++) {
      const f = await peer.next(5000);
      expect(f.id).toBe(2 * i + 1);
      expect(f.data.length).toBeGreaterThan(1 << 20);
    }
    expect(handled).toBe(60);
    peer.destroy();
    await srv.close({ graceful: false });
  });
});
