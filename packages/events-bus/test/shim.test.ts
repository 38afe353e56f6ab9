/**
 * A real peer on the ttrpc socket: upstream containerd-shim-runc-v2 runs a
 * busybox container and publishes its task events to our bus through
 * `containerd.services.events.ttrpc.v1.Events/Forward` (found via TTRPC_ADDRESS).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, rmdir, symlink, writeFile } from 'node:fs/promises';
import { constants, existsSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { taskV2 } from '@boxd/api';
import { connect, createTtrpcClient, type TtrpcClient } from '@boxd/ttrpc';
import { unpackEvent } from '../src/index.js';
import { cancelCollectors, Collector, startHarness, subscribed, type Harness } from './helpers.js';

const exec = promisify(execFile);
const SHIM = '/usr/bin/containerd-shim-runc-v2';
const BUSYBOX = '/bin/busybox';
const canRun = existsSync(SHIM) && existsSync(BUSYBOX) && existsSync('/usr/sbin/runc') && process.getuid?.() === 0;

const namespace = `bxev${process.pid}`;
const id = 'exit3';
let h: Harness;
let bundle: string;
let shimConn: TtrpcClient | undefined;
let shimPid = 0;
let shimLog: Socket | undefined;
let shimLogText = '';

async function makeBundle(dir: string): Promise<void> {
  await mkdir(join(dir, 'rootfs', 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(dir, 'rootfs', 'bin', 'busybox'));
  await symlink('busybox', join(dir, 'rootfs', 'bin', 'sh'));
  await exec('runc', ['spec', '--bundle', dir]);
  const spec = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = ['/bin/sh', '-c', 'exit 3'];
  spec.root = { path: 'rootfs', readonly: true };
  await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
  // The shim writes its log to this fifo and will not start without it, as
  // containerd creates and reads it. O_RDWR opens without waiting for a writer.
  await exec('mkfifo', [join(dir, 'log')]);
  shimLog = new Socket({ fd: openSync(join(dir, 'log'), constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
  shimLog.setEncoding('utf8').on('data', (text: string) => (shimLogText += text));
}

/** `<shim> ... start`, which reads runtime options from stdin until EOF: give it none. */
async function startShim(): Promise<string> {
  const args = ['-namespace', namespace, '-address', h.grpcSocket, '-publish-binary', '/usr/bin/containerd', '-id', id, 'start'];
  const run = exec(SHIM, args, { cwd: bundle, env: { ...process.env, TTRPC_ADDRESS: h.ttrpcSocket, GOMAXPROCS: '2' } });
  run.child.stdin!.end();
  return (await run).stdout.trim();
}

beforeAll(async () => {
  h = await startHarness();
  bundle = join(h.dir, id);
  if (canRun) await makeBundle(bundle);
});

afterAll(async () => {
  await cancelCollectors(h);
  shimConn?.close();
  shimLog?.destroy();
  // If the test failed half way, do not leave a container or a shim behind.
  const runcRoot = `/run/containerd/runc/${namespace}`;
  if (canRun) await exec('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
  // The shim leaves its (by now empty) runc root for this namespace behind.
  await rmdir(runcRoot).catch(() => undefined);
  if (shimPid) {
    try {
      process.kill(shimPid, 'SIGKILL');
    } catch {
      // already gone after Shutdown
    }
  }
  await h?.stop();
});

describe.skipIf(!canRun)('upstream containerd-shim-runc-v2 publishing to the bus', () => {
  it('delivers /tasks/create, /tasks/start, /tasks/exit, /tasks/delete', async () => {
    const sub = await subscribed(h, () => Collector.grpc(h, [`namespace==${namespace}`]));
    shimConn = await connect(await startShim());
    const task = createTtrpcClient(taskV2.TaskService, shimConn);
    shimPid = (await task.Connect({ id })).shimPid;

    const { pid } = await task.Create({ id, bundle });
    await task.Start({ id });
    const waited = await task.Wait({ id });
    expect(waited.exitStatus).toBe(3);
    await task.Delete({ id });
    await task.Shutdown({ id }).catch(() => undefined);

    const got = await sub.waitForCount(4, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}; shim log:\n${shimLogText}`);
    });
    expect(got.map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    expect(got.every((e) => e.namespace === namespace)).toBe(true);
    expect(got.map((e) => e.event?.type_url)).toEqual([
      'containerd.events.TaskCreate',
      'containerd.events.TaskStart',
      'containerd.events.TaskExit',
      'containerd.events.TaskDelete',
    ]);
    expect(unpackEvent(got[0]!.event)).toMatchObject({ containerId: id, bundle, pid });
    expect(unpackEvent(got[2]!.event)).toMatchObject({ containerId: id, id, pid, exitStatus: 3 });
    // The shim stamped these itself: Forward kept its timestamps.
    for (const e of got) expect(Number(e.timestamp!.seconds)).toBeGreaterThan(1_600_000_000);
  }, 30_000);
});
