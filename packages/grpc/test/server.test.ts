/** The gRPC server's protocol edges, seen by grpc-js clients and by a raw HTTP/2 client. */
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, content, InvalidArgumentError, type BoxdError, type CallContext, type ServiceImplementation } from '@boxd/api';
import { GrpcServer, createGrpcClient } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'boxd-grpc-server-'));
const sock = join(dir, 's.sock');
const server = new GrpcServer({ maxMessageSize: 1 << 20 });
const aborted: string[] = [];

function watchAbort(name: string, ctx: CallContext): void {
  ctx.signal.addEventListener('abort', () => aborted.push(name), { once: true });
}

const impl: Partial<ServiceImplementation<typeof content.ContentService>> = {
  Info: async (req, ctx) => {
    if (req.digest === 'slow') {
      watchAbort('slow', ctx);
      await new Promise((r) => setTimeout(r, 2000));
    }
    if (req.digest === 'bad') throw new InvalidArgumentError('digest «bad» is 100% wrong\nreally');
    return { info: { digest: req.digest, size: 1, labels: { deadline: String(ctx.deadline !== undefined) } } };
  },
  async *Read(req, ctx) {
    watchAbort('read', ctx);
    for (let i = 0; ; i++) {
      yield { offset: i, data: Buffer.alloc(64 * 1024, i) };
      if (req.size.toNumber() && i + 1 >= req.size.toNumber()) return;
    }
  },
  Write: async function* (requests) {
    let total = 0;
    for await (const r of requests) {
      // A slow consumer: the client must be held by flow control, not buffered without bound.
      await new Promise((res) => setTimeout(res, 1));
      total += r.data.length;
    }
    yield { action: content.WriteAction.STAT, offset: total };
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

async function rawCall(headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }> {
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(sock) });
  try {
    const req = session.request({ ':method': 'POST', te: 'trailers', ...headers });
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('trailers', (t) => (trailers = t));
    const response = new Promise<http2.IncomingHttpHeaders>((resolve) => req.once('response', resolve));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.end(body);
    await new Promise((resolve) => req.once('close', resolve));
    return { headers: await response, trailers, body: Buffer.concat(chunks) };
  } finally {
    session.close();
  }
}

function framed(message: Uint8Array, compressed = 0): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = compressed;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

describe('gRPC server', () => {
  it('answers an unknown service and an unknown method with UNIMPLEMENTED', async () => {
    const svc = await rawCall({ ':path': '/no.such.Service/Get', 'content-type': 'application/grpc' }, Buffer.alloc(0));
    expect(svc.headers['grpc-status']).toBe(String(Code.UNIMPLEMENTED));
    expect(svc.headers['grpc-message']).toBe('unknown service no.such.Service');
    const method = await rawCall({ ':path': '/containerd.services.content.v1.Content/Nope', 'content-type': 'application/grpc' }, Buffer.alloc(0));
    expect(method.headers['grpc-message']).toBe('unknown method Nope for service containerd.services.content.v1.Content');
  });

  it('answers a method the implementation lacks with UNIMPLEMENTED', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const err = (await c.Delete({ digest: 'x' }).catch((e) => e)) as BoxdError;
    expect(err.code).toBe(Code.UNIMPLEMENTED);
    c.close();
  });

  it('refuses a request that is not gRPC with HTTP 415', async () => {
    const res = await rawCall({ ':path': '/containerd.services.content.v1.Content/Info', 'content-type': 'text/plain' }, Buffer.from('hi'));
    expect(res.headers[':status']).toBe(415);
  });

  it('percent-encodes a status message that is not printable ASCII, and clients read it back', async () => {
    const raw = await rawCall(
      { ':path': '/containerd.services.content.v1.Content/Info', 'content-type': 'application/grpc' },
      framed(content.InfoRequest.encode({ digest: 'bad' })),
    );
    expect(raw.headers['grpc-message']).toMatch(/^[\x20-\x7e]+$/);
    expect(raw.headers['grpc-message']).toBe('digest %C2%ABbad%C2%BB is 100%25 wrong%0Areally: invalid argument');
    const c = createGrpcClient(content.ContentService, sock);
    const err = (await c.Info({ digest: 'bad' }).catch((e) => e)) as BoxdError;
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toBe('digest «bad» is 100% wrong\nreally');
    c.close();
  });

  it('refuses compressed messages, messages over the limit, and a unary call without exactly one message', async () => {
    const path = { ':path': '/containerd.services.content.v1.Content/Info', 'content-type': 'application/grpc' };
    const compressed = await rawCall(path, framed(content.InfoRequest.encode({ digest: 'x' }), 1));
    expect(compressed.trailers['grpc-status'] ?? compressed.headers['grpc-status']).toBe(String(Code.UNIMPLEMENTED));
    const big = await rawCall(path, framed(Buffer.alloc((1 << 20) + 1)));
    expect(big.trailers['grpc-status'] ?? big.headers['grpc-status']).toBe(String(Code.RESOURCE_EXHAUSTED));
    const none = await rawCall(path, Buffer.alloc(0));
    expect(none.headers['grpc-status']).toBe(String(Code.INTERNAL));
    const two = await rawCall(path, Buffer.concat([framed(content.InfoRequest.encode({ digest: 'a' })), framed(content.InfoRequest.encode({ digest: 'b' }))]));
    expect(two.headers['grpc-status']).toBe(String(Code.INTERNAL));
    const cut = await rawCall(path, framed(content.InfoRequest.encode({ digest: 'abc' })).subarray(0, 7));
    expect(cut.headers['grpc-status']).toBe(String(Code.INTERNAL));
  });

  it('ends a call at its deadline with DEADLINE_EXCEEDED and aborts the handler', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const withDeadline = await c.Info({ digest: 'x' }, { timeoutMs: 5000 });
    expect(withDeadline.info?.labels.deadline).toBe('true');
    const started = Date.now();
    const raw = await rawCall(
      { ':path': '/containerd.services.content.v1.Content/Info', 'content-type': 'application/grpc', 'grpc-timeout': '100m' },
      framed(content.InfoRequest.encode({ digest: 'slow' })),
    );
    expect(raw.headers['grpc-status']).toBe(String(Code.DEADLINE_EXCEEDED));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(aborted).toContain('slow');
    c.close();
  });

  it('aborts a streaming handler when the client cancels', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const controller = new AbortController();
    let got = 0;
    const err = await (async () => {
      for await (const _ of c.Read({ digest: 'x' }, { signal: controller.signal })) if (++got === 3) controller.abort();
    })().catch((e) => e);
    expect(err).toBeDefined();
    await expect.poll(() => aborted.includes('read'), { timeout: 2000 }).toBe(true);
    c.close();
  });

  it('takes 8 MiB through a slow client-streaming handler without losing a byte', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const call = c.Write();
    for (let i = 0; i < 64; i++) await call.send({ action: content.WriteAction.WRITE, data: Buffer.alloc(128 * 1024, i) });
    await call.end();
    const reply = await call.recv();
    expect(reply?.offset.toNumber()).toBe(8 << 20);
    c.close();
  });
});
