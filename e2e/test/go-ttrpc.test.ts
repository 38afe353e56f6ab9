/**
 * ttrpc interop with the Go implementation containerd 1.6 uses (Debian's containerd/ttrpc
 * 1.1): a Go client calls our TtrpcServer, our TtrpcClient calls a Go server. Where both
 * servers can answer the same call, the Go client must see the same answer from each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { errorCode, fromStatus, Code, FailedPreconditionError, type CallContext } from '@boxd/api';
import { TtrpcClient, TtrpcServer } from '@boxd/ttrpc';
import { cleanupTempDirs, tempDir } from '@boxd/test-utils';
import { EchoService, type EchoRequest } from './support/echo-service.js';
import { buildGoPeer, goCall, startGoServer, type GoServer } from './support/go-peer.js';

let peer: string;
let dir: string;
let ourSocket: string;
let goServer: GoServer | undefined;
let client: TtrpcClient | undefined;
const ours = new TtrpcServer();

/** Our side of the echo service: the same behaviour as the Go server's handler. */
async function echo(req: EchoRequest, ctx: CallContext) {
  if (req.failCode) throw fromStatus(req.failCode, req.failMessage);
  const metadata = Object.entries(ctx.metadata)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap(([key, values]) => values.map((value) => ({ key, value })));
  return { text: req.text, metadata, hasDeadline: ctx.deadline !== undefined };
}

beforeAll(async () => {
  peer = await buildGoPeer();
  dir = await tempDir('bx-go-');
  ourSocket = join(dir, 'ours.sock');
  ours.addService(EchoService, { Echo: echo });
  await ours.listen(ourSocket);
  goServer = await startGoServer(peer, join(dir, 'go.sock'));
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await goServer?.stop();
  await ours.close({ graceful: false });
  await cleanupTempDirs();
});

describe('Go ttrpc client -> @boxd/ttrpc server', () => {
  it('echoes text and the metadata it was sent, multi-valued keys in order', async () => {
    const opts = { text: 'hello from go', metadata: [['b', 'x'], ['a', '1'], ['a', '2']] as [string, string][] };
    const fromOurs = await goCall(peer, ourSocket, opts);
    expect(fromOurs).toEqual({ text: 'hello from go', metadata: { a: ['1', '2'], b: ['x'] }, hasDeadline: false });
    expect(fromOurs).toEqual(await goCall(peer, goServer!.socket, opts));
  });

  it('passes the Go client deadline through as timeout_nano', async () => {
    const fromOurs = await goCall(peer, ourSocket, { text: 't', timeout: '5s' });
    expect(fromOurs).toMatchObject({ text: 't', hasDeadline: true });
    expect(fromOurs).toEqual(await goCall(peer, goServer!.socket, { text: 't', timeout: '5s' }));
  });

  it('carries non-ASCII text and an empty message unchanged', async () => {
    expect(await goCall(peer, ourSocket, { text: 'grüße ✓ 容器' })).toMatchObject({ text: 'grüße ✓ 容器' });
    expect(await goCall(peer, ourSocket, {})).toEqual({ text: '', metadata: {}, hasDeadline: false });
  });

  it('returns a typed error as its gRPC status code, with containerd’s message suffix', async () => {
    const notFound = await goCall(peer, ourSocket, { fail: { code: Code.NOT_FOUND, message: 'content sha256:abc' } });
    expect(notFound).toEqual({ code: Code.NOT_FOUND, message: 'content sha256:abc: not found' });
    const precondition = await goCall(peer, ourSocket, { fail: { code: Code.FAILED_PRECONDITION, message: 'busy' } });
    expect(precondition).toEqual({ code: Code.FAILED_PRECONDITION, message: 'busy: failed precondition' });
    // Codes containerd adds no suffix for travel exactly as the Go server sends them.
    const exhausted = { fail: { code: Code.RESOURCE_EXHAUSTED, message: 'too many' } };
    expect(await goCall(peer, ourSocket, exhausted)).toEqual(await goCall(peer, goServer!.socket, exhausted));
  });

  it('answers an unknown method or service with UNIMPLEMENTED, word for word like Go', async () => {
    for (const target of [{ method: 'Nope' }, { service: 'boxd.e2e.v1.Nothing' }]) {
      const fromOurs = await goCall(peer, ourSocket, target);
      expect(fromOurs).toMatchObject({ code: Code.UNIMPLEMENTED });
      expect(fromOurs).toEqual(await goCall(peer, goServer!.socket, target));
    }
  });
});

describe('@boxd/ttrpc client -> Go ttrpc server', () => {
  beforeAll(async () => {
    client = await TtrpcClient.connect(goServer!.socket);
  });

  it('makes a unary call with metadata, namespace and deadline', async () => {
    const echo = client!.service(EchoService);
    const res = await echo.Echo(
      { text: 'hello from node' },
      { metadata: { 'X-Trace': ['t1', 't2'], other: 'v' }, namespace: 'ns1', timeoutMs: 5_000 },
    );
    expect(res).toEqual({
      text: 'hello from node',
      metadata: [
        { key: 'containerd-namespace-ttrpc', value: 'ns1' },
        { key: 'other', value: 'v' },
        { key: 'x-trace', value: 't1' },
        { key: 'x-trace', value: 't2' },
      ],
      hasDeadline: true,
    });
    expect((await echo.Echo({ text: '' })).hasDeadline).toBe(false);
  });

  it('multiplexes many concurrent calls on one connection and matches every reply', async () => {
    const echo = client!.service(EchoService);
    const texts = Array.from({ length: 200 }, (_, i) => `call-${i}-${'x'.repeat(i * 37)}`);
    const replies = await Promise.all(texts.map((text) => echo.Echo({ text })));
    expect(replies.map((r) => r.text)).toEqual(texts);
  });

  it('round-trips a 3 MiB message (under the 4 MiB frame limit)', async () => {
    const text = 'abcdefgh'.repeat((3 * 1024 * 1024) / 8);
    const res = await client!.service(EchoService).Echo({ text });
    expect(res.text.length).toBe(text.length);
    expect(res.text === text).toBe(true);
  });

  it('turns a Go status error into the matching typed error', async () => {
    const err = await client!
      .service(EchoService)
      .Echo({ failCode: Code.FAILED_PRECONDITION, failMessage: 'not ready' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toBe('not ready');
  });

  it('gets UNIMPLEMENTED for an unknown method and an unknown service', async () => {
    const method = await client!.call('boxd.e2e.v1.Echo', 'Nope', new Uint8Array()).catch((e: unknown) => e);
    expect(errorCode(method)).toBe(Code.UNIMPLEMENTED);
    expect((method as Error).message).toContain('Nope');
    const service = await client!.call('boxd.e2e.v1.Nothing', 'Echo', new Uint8Array()).catch((e: unknown) => e);
    expect(errorCode(service)).toBe(Code.UNIMPLEMENTED);
    expect((service as Error).message).toContain('boxd.e2e.v1.Nothing');
  });

  it('keeps working on the same connection after errors', async () => {
    expect((await client!.service(EchoService).Echo({ text: 'still here' })).text).toBe('still here');
    expect(client!.closed).toBe(false);
  });
});
