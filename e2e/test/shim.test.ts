/**
 * Our ttrpc client drives upstream containerd-shim-runc-v2 (containerd 1.6) through a whole
 * task life cycle, and our ttrpc server receives the task events the shim publishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  events,
  eventsTtrpc,
  isNotFound,
  isUnavailable,
  taskTypes,
  taskV2,
  type ServiceClient,
} from '@boxd/api';
import { TtrpcClient, TtrpcServer } from '@boxd/ttrpc';
import {
  buildTestImage,
  cleanupTempDirs,
  findProcesses,
  isAlive,
  run,
  tempDir,
  terminate,
  waitFor,
} from '@boxd/test-utils';
import { makeBundle } from './support/bundle.js';
import { openShimLog, shimDelete, shimStart, type ShimInvocation } from './support/shim.js';

const NS = `bx-e2e-${process.pid}`;
const ID = 'shimtest';
const RUNC_ROOT = `/run/containerd/runc/${NS}`;

let dir: string;
let shim: ShimInvocation;
let shimAddress = '';
let shimPid = 0;
let initPid = 0;
let client: TtrpcClient | undefined;
let task: ServiceClient<typeof taskV2.TaskService>;
let shimLog: Awaited<ReturnType<typeof openShimLog>> | undefined;
const eventServer = new TtrpcServer();
const published: eventsTtrpc.Envelope[] = [];

const call = { namespace: NS, timeoutMs: 20_000 };

beforeAll(async () => {
  dir = await tempDir('bx-shim-');
  const image = await buildTestImage({ dir });
  const bundle = await makeBundle(image, join(dir, ID), ['sh', '-c', 'echo hello from $(hostname); exec sleep 60']);
  shim = {
    namespace: NS,
    id: ID,
    bundle,
    containerdAddress: join(dir, 'containerd.sock'),
    ttrpcAddress: join(dir, 'containerd.sock.ttrpc'),
  };
  // Stands in for containerd's ttrpc events endpoint: the shim's Go ttrpc client forwards here.
  eventServer.addService(eventsTtrpc.EventsService, {
    async Forward(req) {
      if (req.envelope) published.push(req.envelope);
      return {};
    },
  });
  await eventServer.listen(shim.ttrpcAddress);
  shimLog = await openShimLog(bundle);
});

afterAll(async () => {
  if (process.env.BX_DEBUG) console.error(shimLog?.text());
  await client?.close().catch(() => {});
  // Whatever a failed test left behind: the container, then any shim serving this bundle.
  await run('runc', ['--root', RUNC_ROOT, 'delete', '--force', ID]);
  const shims = await findProcesses((argv) => argv[0]?.endsWith('containerd-shim-runc-v2') === true && argv.includes(NS));
  for (const p of shims) await terminate(p.pid, 1_000);
  if (shimAddress.startsWith('unix://')) await rm(shimAddress.slice('unix://'.length), { force: true });
  await rm(RUNC_ROOT, { recursive: true, force: true });
  shimLog?.close();
  await eventServer.close({ graceful: false });
  await cleanupTempDirs();
});

function topics(): string[] {
  return published.map((e) => e.topic);
}

describe('upstream containerd-shim-runc-v2 driven by @boxd/ttrpc', () => {
  it('start prints a unix socket address and records it in the bundle', async () => {
    shimAddress = await shimStart(shim);
    expect(shimAddress).toMatch(/^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
    expect(await readFile(join(shim.bundle, 'address'), 'utf8')).toBe(shimAddress);
    client = await TtrpcClient.connect(shimAddress);
    task = client.service(taskV2.TaskService);
  });

  it('Connect names the shim process', async () => {
    const res = await task.Connect({ id: ID }, call);
    expect(res.shimPid).toBeGreaterThan(0);
    expect(res.taskPid).toBe(0);
    shimPid = res.shimPid;
    const cmdline = (await readFile(`/proc/${shimPid}/cmdline`, 'utf8')).split('\0');
    expect(cmdline[0]).toMatch(/containerd-shim-runc-v2$/);
    expect(cmdline).toEqual(expect.arrayContaining(['-id', ID, '-namespace', NS]));
  });

  it('Create runs runc create on the bundle and State says CREATED', async () => {
    // As `ctr run --log-uri` does: the same file URI for both streams. (The 1.6 shim
    // dereferences a nil reader if a file URI is given for stdout only.)
    const logUri = `file://${join(dir, 'out.log')}`;
    const created = await task.Create(
      { id: ID, bundle: shim.bundle, rootfs: [], terminal: false, stdin: '', stdout: logUri, stderr: logUri },
      call,
    );
    expect(created.pid).toBeGreaterThan(0);
    initPid = created.pid;
    expect(Number(await readFile(join(shim.bundle, 'init.pid'), 'utf8'))).toBe(initPid);

    const state = await task.State({ id: ID }, call);
    expect(state).toMatchObject({ id: ID, bundle: shim.bundle, pid: initPid, status: taskTypes.Status.CREATED, terminal: false });
  });

  it('Start runs the process; State, Pids and its output agree', async () => {
    const started = await task.Start({ id: ID }, call);
    expect(started.pid).toBe(initPid);
    const state = await task.State({ id: ID }, call);
    expect(state.status).toBe(taskTypes.Status.RUNNING);
    const pids = await task.Pids({ id: ID }, call);
    expect(pids.processes.map((p) => p.pid)).toContain(initPid);
    await waitFor(async () => (await readFile(join(dir, 'out.log'), 'utf8').catch(() => '')) === 'hello from shimtest\n', 10_000);
  });

  it('errors come back typed: an unknown exec is NOT_FOUND', async () => {
    const err = await task.State({ id: ID, execId: 'no-such-exec' }, call).catch((e: unknown) => e);
    expect(isNotFound(err)).toBe(true);
    expect((err as Error).message).toContain('no-such-exec');
  });

  it('Kill + Wait report the SIGKILL exit (137) with a timestamp', async () => {
    const waiting = task.Wait({ id: ID }, { namespace: NS, timeoutMs: 30_000 });
    waiting.catch(() => {}); // awaited below; this keeps a failed Kill from leaving it unhandled
    await task.Kill({ id: ID, signal: 9, all: false }, call);
    const waited = await waiting;
    expect(waited.exitStatus).toBe(137);
    const exitedAt = Number(waited.exitedAt?.seconds ?? 0);
    expect(Math.abs(exitedAt - Date.now() / 1000)).toBeLessThan(60);

    const state = await task.State({ id: ID }, call);
    expect(state).toMatchObject({ status: taskTypes.Status.STOPPED, exitStatus: 137 });
  });

  it('Delete removes the container and returns its exit', async () => {
    const deleted = await task.Delete({ id: ID }, call);
    expect(deleted).toMatchObject({ pid: initPid, exitStatus: 137 });
    const runcState = await run('runc', ['--root', RUNC_ROOT, 'state', ID]);
    expect(runcState.code).not.toBe(0);
    const err = await task.State({ id: ID }, call).catch((e: unknown) => e);
    expect(isNotFound(err)).toBe(true);
  });

  it('the shim published create, start, exit and delete to our ttrpc server, in order', async () => {
    await waitFor(() => topics().includes('/tasks/delete'), 10_000);
    expect(topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    expect(published.every((e) => e.namespace === NS)).toBe(true);

    const [create, start, exit, del] = published.map((e) => e.event!);
    expect(create!.type_url).toBe('containerd.events.TaskCreate');
    expect(events.TaskCreate.decode(create!.value)).toMatchObject({ containerId: ID, bundle: shim.bundle, pid: initPid });
    expect(events.TaskStart.decode(start!.value)).toMatchObject({ containerId: ID, pid: initPid });
    expect(events.TaskExit.decode(exit!.value)).toMatchObject({ containerId: ID, id: ID, pid: initPid, exitStatus: 137 });
    expect(events.TaskDelete.decode(del!.value)).toMatchObject({ containerId: ID, pid: initPid, exitStatus: 137 });
  });

  it('Shutdown makes the shim exit and close the connection', async () => {
    const closed = new Promise<void>((resolve) => client!.onClose(() => resolve()));
    await task.Shutdown({ id: ID, now: false }, call).catch((e: unknown) => {
      // The shim may exit before its reply is written; containerd ignores that too.
      if (!isUnavailable(e)) throw e;
    });
    await closed;
    await waitFor(() => !isAlive(shimPid), 10_000);
    expect(shimLog!.text()).not.toMatch(/level=(error|fatal)/);
  });

  it('the delete command prints a raw DeleteResponse, as containerd reads it', async () => {
    const r = await shimDelete(shim);
    expect(r.code, r.stderr).toBe(0);
    const res = taskV2.DeleteResponse.decode(r.stdoutBytes);
    expect(res.pid).toBe(initPid);
    expect(res.exitStatus).toBe(137);
    expect(Number(res.exitedAt?.seconds ?? 0)).toBeGreaterThan(0);
  });
});
