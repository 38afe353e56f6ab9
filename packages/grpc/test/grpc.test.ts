import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  content,
  health,
  NotFoundError,
  UnimplementedError,
  UnavailableError,
  isNotFound,
  namespaceOf,
  Code,
  type ServiceImplementation,
  type BoxdError,
} from '@boxd/api';
import { GrpcServer, createGrpcClient } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'boxd-grpc-'));
const sock = join(dir, 'test.sock');
const server = new GrpcServer();

const unimplemented = () => {
  throw new UnimplementedError('not here');
};

const contentImpl: ServiceImplementation<typeof content.ContentService> = {
  Info: async (req, ctx) => {
    if (req.digest === 'missing') throw new NotFoundError(`content ${req.digest}`);
    return { info: { digest: req.digest, size: '9007199254740993', labels: { ns: namespaceOf(ctx) ?? '' } } };
  },
  Update: unimplemented,
  List: async function* (req) {
    for (let i = 0; i < 3; i++) yield { info: [{ digest: `sha256:${i}`, labels: { filter: req.filters.join(',') } }] };
  },
  Delete: unimplemented,
  Read: async function* () {
    yield { offset: 0, data: Buffer.from('ab') };
    throw new NotFoundError('gone midway');
  },
  Status: unimplemented,
  ListStatuses: unimplemented,
  Write: async function* (requests) {
    let total = 0;
    for await (const r of requests) {
      if (r.ref === 'locked') throw new UnavailableError('ref locked');
      total += r.data.length;
      yield { action: r.action, offset: total };
    }
  },
  Abort: unimplemented,
};

const healthImpl: ServiceImplementation<typeof health.HealthService> = {
  Check: async () => ({ status: health.HealthCheckResponse_ServingStatus.SERVING }),
  Watch: async function* () {
    yield { status: health.HealthCheckResponse_ServingStatus.SERVING };
  },
};

beforeAll(async () => {
  server.addService(content.ContentService, contentImpl).addService(health.HealthService, healthImpl);
  await server.listen(sock);
});
afterAll(() => server.close());

describe('gRPC transport', () => {
  it('creates the socket 0600', () => {
    expect(statSync(sock).mode & 0o777).toBe(0o600);
  });

  it('unary call carries namespace and exact 64-bit values', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const res = await c.Info({ digest: 'sha256:x' }, { namespace: 'ns1' });
    expect(res.info?.size.toString()).toBe('9007199254740993');
    expect(res.info?.labels.ns).toBe('ns1');
    c.close();
  });

  it('typed errors keep their code and message', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const err = (await c.Info({ digest: 'missing' }).catch((e) => e)) as BoxdError;
    expect(isNotFound(err)).toBe(true);
    expect(err.message).toBe('content missing');
    const un = (await c.Delete({ digest: 'x' }).catch((e) => e)) as BoxdError;
    expect(un.code).toBe(Code.UNIMPLEMENTED);
    c.close();
  });

  it('server streams and errors mid-stream', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const got: string[] = [];
    for await (const m of c.List({ filters: ['a', 'b'] })) got.push(m.info[0].digest + m.info[0].labels.filter);
    expect(got).toEqual(['sha256:0a,b', 'sha256:1a,b', 'sha256:2a,b']);
    const chunks: string[] = [];
    const err = await (async () => {
      for await (const m of c.Read({ digest: 'x' })) chunks.push(Buffer.from(m.data).toString());
    })().catch((e) => e);
    expect(chunks).toEqual(['ab']);
    expect(isNotFound(err)).toBe(true);
    c.close();
  });

  it('bidirectional streams interleave', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const call = c.Write();
    await call.send({ action: content.WriteAction.WRITE, data: Buffer.alloc(10) });
    expect((await call.recv())?.offset.toNumber()).toBe(10);
    await call.send({ action: content.WriteAction.WRITE, data: Buffer.alloc(5) });
    expect((await call.recv())?.offset.toNumber()).toBe(15);
    await call.end();
    expect(await call.recv()).toBeUndefined();
    c.close();
  });

  it('ends a bidi call the client is still sending on with the handler\'s error', async () => {
    const c = createGrpcClient(content.ContentService, sock);
    const call = c.Write();
    await call.send({ action: content.WriteAction.STAT, ref: 'locked' });
    await expect(call.recv()).rejects.toMatchObject({ code: Code.UNAVAILABLE, message: expect.stringContaining('ref locked') });
    c.close();
  });

  it('refuses to take over a live socket', async () => {
    const other = new GrpcServer();
    other.addService(health.HealthService, healthImpl);
    await expect(other.listen(sock)).rejects.toThrow(/in use/);
  });
});
