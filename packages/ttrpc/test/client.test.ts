import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import Long from 'long';
import {
  Code,
  NotFoundError,
  errorCode,
  isBoxdError,
  isNotFound,
  namespaceOf,
  type CallContext,
  type ServiceClient,
  type ServiceImplementation,
} from '@boxd/api';
import { TtrpcServer } from '../src/server.js';
import { TtrpcClient } from '../src/client.js';
import { connect } from '../src/index.js';
import { decodeRequest, encodeRequest, encodeResponse } from '../src/envelope.js';
import { MAX_DATA_LENGTH, MessageType } from '../src/frame.js';
import { MsgCodec, RawPeer, TestService, fakeServer, frameHex, sleep, tmpDir, type RawFrame } from './fixtures.js';

const seen: { ctx?: CallContext; abortReason?: unknown } = {};

function abortedReason(ctx: CallContext): Promise<unknown> {
  return new Promise((resolve) => {
    if (ctx.signal.aborted) resolve(ctx.signal.reason);
    ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason), { once: true });
  });
}

const impl: ServiceImplementation<TestService> = {
  echo: async (req, ctx) => {
    seen.ctx = ctx;
    const [cmd, arg] = req.text.split(':');
    switch (cmd) {
      case 'fail':
        throw new NotFoundError('thing');
      case 'boom':
        throw new Error('boom');
      case 'sleep':
        await sleep(Number(arg));
        return { text: 'slept' };
      case 'hang':
        seen.abortReason = await abortedReason(ctx);
        throw seen.abortReason;
      case 'big':
        return { text: 'x'.repeat(MAX_DATA_LENGTH + 1) };
      default:
        return { text: req.text, n: req.n + 1 };
    }
  },
  // eslint-disable-next-line require-yield
  async *list() {},
  sum: async () => ({}),
  // eslint-disable-next-line require-yield
  async *chat() {},
};

const env = tmpDir();
const path = env.sock();
const server = new TtrpcServer();
let client: TtrpcClient;
let svc: ServiceClient<TestService>;

beforeAll(async () => {
  server.addService(TestService, impl);
  await server.listen(path);
  client = await TtrpcClient.connect(`unix://${path}`);
  svc = client.service(TestService);
});

afterAll(async () => {
  await client.close();
  await server.close({ graceful: false });
  env.cleanup();
});

async function rejection(p: Promise<unknown>): Promise<Error & { code?: number }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: number };
  }
  throw new Error('expected a rejection');
}

describe('client unary calls', () => {
  it('round-trips a typed call', async () => {
    expect(await svc.echo({ text: 'hello', n: 41 })).toEqual({ text: 'hello', n: 42 });
  });

  it('turns a status into the matching typed error', async () => {
    const err = await rejection(svc.echo({ text: 'fail' }));
    expect(isNotFound(err)).toBe(true);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe('thing');
    const boom = await rejection(svc.echo({ text: 'boom' }));
    expect(errorCode(boom)).toBe(Code.UNKNOWN);
    expect(boom.message).toBe('boom');
  });

  it('carries metadata and the namespace to the handler', async () => {
    await svc.echo({ text: 'meta' }, { metadata: { 'X-Trace': ['a', 'b'], single: 'c' }, namespace: 'k8s.io' });
    expect({ ...seen.ctx!.metadata }).toEqual({
      'x-trace': ['a', 'b'],
      single: ['c'],
      'containerd-namespace-ttrpc': ['k8s.io'],
    });
    expect(namespaceOf(seen.ctx!)).toBe('k8s.io');
    await svc.echo({ text: 'plain' });
    expect({ ...seen.ctx!.metadata }).toEqual({});
    expect(seen.ctx!.deadline).toBeUndefined();
  });

  it('fails with DEADLINE_EXCEEDED locally and aborts the handler on the server', async () => {
    const started = Date.now();
    seen.abortReason = undefined;
    const err = await rejection(svc.echo({ text: 'hang' }, { timeoutMs: 100 }));
    const took = Date.now() - started;
    expect(errorCode(err)).toBe(Code.DEADLINE_EXCEEDED);
    expect(took).toBeGreaterThanOrEqual(95);
    expect(took).toBeLessThan(1000);
    await sleep(50);
    expect(errorCode(seen.abortReason)).toBe(Code.DEADLINE_EXCEEDED);
    expect(seen.ctx!.deadline! - started).toBeGreaterThanOrEqual(90);
    expect(seen.ctx!.deadline! - started).toBeLessThan(300);
    // The connection is unaffected.
    expect(await svc.echo({ text: 'after', n: 1 })).toEqual({ text: 'after', n: 2 });
  });

  it('has the server answer DEADLINE_EXCEEDED itself when timeout_nano passes', async () => {
    const peer = await RawPeer.open(path);
    const req = encodeRequest({
      service: TestService.name,
      method: 'Echo',
      payload: MsgCodec.encode({ text: 'hang' }),
      timeoutNano: Long.fromNumber(50_000_000),
    });
    const started = Date.now();
    peer.write(frameHex(1, 1, 0, req));
    const f = await peer.next();
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(f.data.toString('hex')).toBe(
      Buffer.from(encodeResponse({ status: { code: 4, message: 'context deadline exceeded', details: [] } })).toString('hex'),
    );
    expect(await peer.quiet()).toBe(true);
    peer.destroy();
  });

  it('cancels through an AbortSignal', async () => {
    const ac = new AbortController();
    const p = svc.echo({ text: 'sleep:300' }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    expect(errorCode(await rejection(p))).toBe(Code.CANCELLED);
    expect(errorCode(await rejection(svc.echo({ text: 'x' }, { signal: ac.signal })))).toBe(Code.CANCELLED);
  });

  it('runs 1000 concurrent calls on one connection', async () => {
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => svc.echo({ text: `c${i}`, n: i })));
    results.forEach((r, i) => expect(r).toEqual({ text: `c${i}`, n: i + 1 }));
  });

  it('runs handlers concurrently', async () => {
    const started = Date.now();
    await Promise.all(Array.from({ length: 20 }, () => svc.echo({ text: 'sleep:100' })));
    expect(Date.now() - started).toBeLessThan(600);
  });

  it('refuses to send an oversize request and stays usable', async () => {
    const err = await rejection(svc.echo({ text: 'x'.repeat(MAX_DATA_LENGTH) }));
    expect(errorCode(err)).toBe(Code.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/^message length \d+ exceed maximum message size of 4194304$/);
    expect(await svc.echo({ text: 'ok', n: 0 })).toEqual({ text: 'ok', n: 1 });
  });

  it('gets RESOURCE_EXHAUSTED when the server refuses to send an oversize response', async () => {
    const err = await rejection(svc.echo({ text: 'big' }));
    expect(errorCode(err)).toBe(Code.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/^message length \d+ exceed maximum message size of 4194304$/);
  });

  it('fails with UNAVAILABLE when connecting to nothing', async () => {
    const err = await rejection(connect(env.sock('missing.sock')));
    expect(errorCode(err)).toBe(Code.UNAVAILABLE);
  });
});

describe('client against a hand-driven server', () => {
  it('uses odd increasing ids, flags 0 and no Data frames for unary calls', async () => {
    const sock = env.sock('fake1.sock');
    const got: RawFrame[] = [];
    const fake = await fakeServer(sock, (s, f) => {
      got.push(f);
      s.write(frameHex(f.id, MessageType.Response, 0));
    });
    const c = await TtrpcClient.connect(sock);
    const s = c.service(TestService);
    await s.echo({ text: 'a' });
    await Promise.all([s.echo({ text: 'b' }), s.echo({ text: 'c' }), s.echo({ text: 'd' })]);
    expect(got.map((f) => [f.id, f.type, f.flags])).toEqual([
      [1, 1, 0],
      [3, 1, 0],
      [5, 1, 0],
      [7, 1, 0],
    ]);
    expect(got.map((f) => MsgCodec.decode(decodeRequest(f.data).payload).text)).toEqual(['a', 'b', 'c', 'd']);
    await c.close();
    await fake.close();
  });

  it('treats an absent status and status code 0 as success', async () => {
    const sock = env.sock('fake2.sock');
    const fake = await fakeServer(sock, (s, f) => {
      const payload = MsgCodec.encode({ text: 'pong' });
      const res = f.id === 1 ? encodeResponse({ payload }) : encodeResponse({ status: { code: 0, message: '', details: [] }, payload });
      s.write(frameHex(f.id, MessageType.Response, 0, res));
    });
    const c = await TtrpcClient.connect(sock);
    const s = c.service(TestService);
    expect(await s.echo({})).toEqual({ text: 'pong', n: 0 });
    expect(await s.echo({})).toEqual({ text: 'pong', n: 0 });
    await c.close();
    await fake.close();
  });

  it('drops a response that arrives after the deadline', async () => {
    const sock = env.sock('fake3.sock');
    const fake = await fakeServer(sock, (s, f) => {
      const text = MsgCodec.decode(decodeRequest(f.data).payload).text;
      const reply = () => s.write(frameHex(f.id, MessageType.Response, 0, encodeResponse({ payload: MsgCodec.encode({ text }) })));
      if (text === 'late') setTimeout(reply, 150);
      else reply();
    });
    const c = await TtrpcClient.connect(sock);
    const s = c.service(TestService);
    const err = await rejection(s.echo({ text: 'late' }, { timeoutMs: 30 }));
    expect(errorCode(err)).toBe(Code.DEADLINE_EXCEEDED);
    await sleep(200);
    expect(await s.echo({ text: 'next' })).toEqual({ text: 'next', n: 0 });
    expect(c.closed).toBe(false);
    await c.close();
    await fake.close();
  });

  it('fails only the stream that receives an oversize frame', async () => {
    const sock = env.sock('fake4.sock');
    const fake = await fakeServer(sock, (s, f) => {
      if (f.id === 1) {
        const head = Buffer.alloc(10);
        head.writeUInt32BE(MAX_DATA_LENGTH + 1, 0);
        head.writeUInt32BE(1, 4);
        head[8] = MessageType.Response;
        s.write(head);
        s.write(Buffer.alloc(MAX_DATA_LENGTH + 1));
      } else {
        s.write(frameHex(f.id, MessageType.Response, 0, encodeResponse({ payload: MsgCodec.encode({ n: 7 }) })));
      }
    });
    const c = await TtrpcClient.connect(sock);
    const s = c.service(TestService);
    const first = s.echo({ text: 'one' });
    const second = s.echo({ text: 'two' });
    const err = await rejection(first);
    expect(errorCode(err)).toBe(Code.RESOURCE_EXHAUSTED);
    expect(err.message).toBe(`message length ${MAX_DATA_LENGTH + 1} exceed maximum message size of 4194304`);
    expect(await second).toEqual({ text: '', n: 7 });
    expect(c.closed).toBe(false);
    await c.close();
    await fake.close();
  });
});

describe('connection loss', () => {
  it('fails pending calls with UNAVAILABLE when the server process dies mid-call', async () => {
    const sock = env.sock('child.sock');
    // A server that dies (SIGKILL, no goodbye) as soon as a request arrives.
    const child = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer((s) => s.on('data', () => process.kill(process.pid, 'SIGKILL'))).listen(${JSON.stringify(sock)}, () => console.log('ready'))`,
    ]);
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const c = await TtrpcClient.connect(sock);
    const closes: Array<Error | undefined> = [];
    c.onClose((err) => closes.push(err));
    const err = await rejection(c.service(TestService).echo({ text: 'x' }));
    expect(errorCode(err)).toBe(Code.UNAVAILABLE);
    expect(err.message).toBe('ttrpc: closed');
    expect(c.closed).toBe(true);
    const later = await rejection(c.service(TestService).echo({ text: 'y' }));
    expect(errorCode(later)).toBe(Code.UNAVAILABLE);
    expect(later.message).toBe('ttrpc: closed');
    expect(closes).toHaveLength(1);
  });

  it('fails every pending call when our server is force-closed', async () => {
    const sock = env.sock('forced.sock');
    const srv = new TtrpcServer();
    const reasons: unknown[] = [];
    srv.addService(TestService, {
      ...impl,
      echo: async (_req, ctx) => {
        reasons.push(await abortedReason(ctx));
        return {};
      },
    });
    await srv.listen(sock);
    const c = await TtrpcClient.connect(sock);
    const s = c.service(TestService);
    let onCloseCalls = 0;
    c.onClose(() => onCloseCalls++);
    const calls = [s.echo({}), s.echo({}), s.echo({})].map(rejection);
    await sleep(30);
    await srv.close({ graceful: false });
    const errs = await Promise.all(calls);
    for (const e of errs) {
      expect(isBoxdError(e)).toBe(true);
      expect(errorCode(e)).toBe(Code.UNAVAILABLE);
    }
    expect(reasons).toHaveLength(3);
    for (const r of reasons) expect(errorCode(r)).toBe(Code.UNAVAILABLE);
    await sleep(10);
    expect(onCloseCalls).toBe(1);
  });
});
