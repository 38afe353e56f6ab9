/** The `boxd-events-bus` executable: flags, config, readiness, stopping with subscribers attached. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Code, events, eventsService, isCode } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { createEventPublisher } from '../src/index.js';
import { Collector } from './helpers.js';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
let dir: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-evb-');
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  exited: Promise<{ code: number | null; stderr: string }>;
  ready: Promise<void>;
}

function startBin(args: string[]): Started {
  // fd 3 is the readiness pipe (--ready-fd 3).
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve({ code, stderr });
    }),
  );
  const ready = new Promise<void>((resolve, reject) => {
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => (String(chunk).includes('ready') ? resolve() : undefined));
    void exited.then(({ code, stderr: err }) => reject(new Error(`exited ${code} before ready: ${err}`)));
  });
  ready.catch(() => undefined);
  return { child, exited, ready };
}

describe('boxd-events-bus', () => {
  it('serves both sockets (0600), and on SIGTERM ends open subscriptions with UNAVAILABLE and exits 0 promptly', async () => {
    const grpcSocket = join(dir, 'g.sock');
    const ttrpcSocket = join(dir, 't.sock');
    const config = join(dir, 'config.toml');
    await writeFile(config, '[events-bus]\nsubscriber_buffer = 8\n');
    const bin = startBin(['--address', ttrpcSocket, '--grpc-address', grpcSocket, '--root', join(dir, 'root'), '--config', config, '--ready-fd', '3']);
    await bin.ready;
    expect((await stat(grpcSocket)).mode & 0o777).toBe(0o600);
    expect((await stat(ttrpcSocket)).mode & 0o777).toBe(0o600);

    const client = createGrpcClient(eventsService.EventsService, grpcSocket);
    const sub = new Collector((signal) => client.Subscribe({ filters: [] }, { signal }));
    // No view into the child's bus: publish until the subscription has seen something.
    const publisher = createEventPublisher(client);
    for (let i = 0; sub.received.length === 0 && i < 200; i++) {
      await publisher.publish('default', '/tasks/oom', events.TaskOOM, { containerId: 'x' });
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(sub.received.length).toBeGreaterThan(0);

    const stopAt = Date.now();
    bin.child.kill('SIGTERM');
    const { code } = await bin.exited;
    expect(code).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(5000);
    await sub.done;
    expect(isCode(sub.error, Code.UNAVAILABLE)).toBe(true);
    expect((sub.error as Error).message).toMatch(/events bus is shutting down/);
    client.close();
  });

  it('refuses a bad config and bad flags', async () => {
    const config = join(dir, 'bad.toml');
    await writeFile(config, 'subscriber_buffer = 0\n');
    const badConfig = startBin(['--grpc-address', join(dir, 'b.sock'), '--root', join(dir, 'root2'), '--config', config]);
    const result = await badConfig.exited;
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/subscriber_buffer must be a positive integer/);

    const noAddress = await startBin(['--root', join(dir, 'root3')]).exited;
    expect(noAddress.code).toBe(2);
    expect(noAddress.stderr).toMatch(/--address .* is required/);
  });
});
