import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { Code, errorCode, type CallContext, type ServiceImplementation } from '@boxd/api';
import { TtrpcServer } from '../src/server.js';
import { TtrpcClient } from '../src/client.js';
import { TestService, sleep, tmpDir } from './fixtures.js';

const env = tmpDir();
afterAll(() => env.cleanup());

function serviceWith(echo: (text: string, ctx: CallContext) => Promise<void>): ServiceImplementation<TestService> {
  return {
    echo: async (req, ctx) => {
      await echo(req.text, ctx);
      return { text: `done ${req.text}` };
    },
    // eslint-disable-next-line require-yield
    async *list() {},
    sum: async () => ({}),
    // eslint-disable-next-line require-yield
    async *chat() {},
  };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('listen', () => {
  it('creates the socket 0600 and removes it on close', async () => {
    const path = env.sock('perm.sock');
    const server = new TtrpcServer().addService(TestService, serviceWith(async () => {}));
    await server.listen(`unix://${path}`);
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  it('uses 0660 and the given group when asked', async () => {
    const path = env.sock('group.sock');
    const gid = process.getgid!();
    const server = new TtrpcServer().addService(TestService, serviceWith(async () => {}));
    await server.listen(path, { gid });
    const st = statSync(path);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(gid);
    await server.close();
  });

  it('replaces a stale socket file nobody answers on', async () => {
    const path = env.sock('stale.sock');
    // A listening process killed outright leaves its socket file behind.
    const child = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('ready'))`,
    ]);
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    child.kill('SIGKILL');
    await new Promise<void>((r) => child.once('exit', () => r()));
    expect(statSync(path).isSocket()).toBe(true);
    const server = new TtrpcServer().addService(TestService, serviceWith(async () => {}));
    await server.listen(path);
    const client = await TtrpcClient.connect(path);
    expect(await client.service(TestService).echo({ text: 'x' })).toEqual({ text: 'done x', n: 0 });
    await client.close();
    await server.close();
  });

  it('refuses to take over a socket a live server answers on', async () => {
    const path = env.sock('live.sock');
    const first = new TtrpcServer().addService(TestService, serviceWith(async () => {}));
    await first.listen(path);
    const second = new TtrpcServer();
    const err = await rejection(second.listen(path));
    expect(errorCode(err)).toBe(Code.UNAVAILABLE);
    expect(err.message).toMatch(/in use by a running server/);
    const client = await TtrpcClient.connect(path);
    expect(await client.service(TestService).echo({ text: 'still first' })).toEqual({ text: 'done still first', n: 0 });
    await client.close();
    await first.close();
  });

  it('serves on an abstract socket', async () => {
    const name = `\0boxd-ttrpc-test-${process.pid}-${Date.now()}`;
    const server = new TtrpcServer().addService(TestService, serviceWith(async () => {}));
    await server.listen(name);
    const client = await TtrpcClient.connect(name);
    expect(await client.service(TestService).echo({ text: 'abstract' })).toEqual({ text: 'done abstract', n: 0 });
    await client.close();
    await server.close();
  });

  it('refuses a path that is not a socket', async () => {
    const path = env.sock('plain-file');
    writeFileSync(path, 'x');
    expect(errorCode(await rejection(new TtrpcServer().listen(path)))).toBe(Code.ALREADY_EXISTS);
  });
});

describe('close', () => {
  it('graceful close drains an in-flight call, refuses new ones, then closes', async () => {
    const path = env.sock('drain.sock');
    let started!: () => void;
    const isStarted = new Promise<void>((r) => (started = r));
    let aborted = false;
    const server = new TtrpcServer().addService(
      TestService,
      serviceWith(async (text, ctx) => {
        if (text !== 'slow') return;
        ctx.signal.addEventListener('abort', () => (aborted = true));
        started();
        await sleep(150);
      }),
    );
    await server.listen(path);
    const client = await TtrpcClient.connect(path);
    const svc = client.service(TestService);
    const inflight = svc.echo({ text: 'slow' });
    await isStarted;
    let closedAt = 0;
    const closing = server.close({ graceful: true, timeoutMs: 5000 }).then(() => (closedAt = Date.now()));
    await sleep(10);
    expect(existsSync(path)).toBe(false);
    const refused = await rejection(svc.echo({ text: 'new' }));
    expect(errorCode(refused)).toBe(Code.UNAVAILABLE);
    expect(await inflight).toEqual({ text: 'done slow', n: 0 });
    const answeredAt = Date.now();
    await closing;
    expect(closedAt).toBeGreaterThanOrEqual(answeredAt - 5);
    expect(aborted).toBe(false);
    await sleep(10);
    expect(client.closed).toBe(true);
  });

  it('graceful close forces what is left after the timeout, aborting handlers', async () => {
    const path = env.sock('force.sock');
    let reason: unknown;
    const server = new TtrpcServer().addService(
      TestService,
      serviceWith(
        (_text, ctx) =>
          new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => {
              reason = ctx.signal.reason;
              resolve();
            }),
          ),
      ),
    );
    await server.listen(path);
    const client = await TtrpcClient.connect(path);
    const call = rejection(client.service(TestService).echo({ text: 'stuck' }));
    await sleep(20);
    const started = Date.now();
    await server.close({ graceful: true, timeoutMs: 100 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(errorCode(reason)).toBe(Code.UNAVAILABLE);
    expect(errorCode(await call)).toBe(Code.UNAVAILABLE);
  });

  it('close with no connections resolves promptly and is idempotent', async () => {
    const path = env.sock('idle.sock');
    const server = new TtrpcServer();
    await server.listen(path);
    const a = server.close();
    const b = server.close();
    await Promise.all([a, b]);
    expect(errorCode(await rejection(TtrpcClient.connect(path)))).toBe(Code.UNAVAILABLE);
  });

  it('client close() fails its pending calls and fires onClose once', async () => {
    const path = env.sock('cclose.sock');
    const server = new TtrpcServer().addService(TestService, serviceWith(() => sleep(200)));
    await server.listen(path);
    const client = await TtrpcClient.connect(path);
    let fired = 0;
    client.onClose(() => fired++);
    const pending = rejection(client.service(TestService).echo({ text: 'x' }));
    await sleep(10);
    await client.close();
    expect(errorCode(await pending)).toBe(Code.UNAVAILABLE);
    expect(fired).toBe(1);
    let late = 0;
    client.onClose(() => late++);
    await sleep(1);
    expect(late).toBe(1);
    await server.close({ graceful: false });
  });
});
