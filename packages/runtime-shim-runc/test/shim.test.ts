/**
 * The shim binary started as containerd starts it (`start` in the bundle), driven over
 * ttrpc with `containerd.task.v2.Task`, real runc containers, and a ttrpc server standing
 * in for containerd's events endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  boxdShim,
  cgroupsV1,
  events,
  eventsTtrpc,
  Code,
  errorCode,
  isAlreadyExists,
  isNotFound,
  packJsonAny,
  RESOURCES_TYPE_URL,
  PROCESS_SPEC_TYPE_URL,
  runcOptions,
  SHIM_JOIN_DECLINED,
  SHIM_JOIN_HEADER,
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
  unpackTestImage,
  type TestImage,
} from '@boxd/test-utils';
import { makeBundle, readFifo, SHIM_BIN, shimDelete, shimEnv, shimStart, writeFifo, type ShimEnv } from './support.js';

const NS = `bx-shim-${process.pid}`;
const RUNC_ROOT = `/run/boxd/runc/${NS}`;
const call = { timeoutMs: 20_000 };

let dir: string;
let image: TestImage;
let env: ShimEnv;
let address = '';
let client: TtrpcClient | undefined;
let task: ServiceClient<typeof taskV2.TaskService>;
const eventServer = new TtrpcServer();
const published: eventsTtrpc.Envelope[] = [];
const ids: string[] = [];

function topicsFor(id: string): string[] {
  return published.filter((e) => decodeContainerId(e) === id).map((e) => e.topic);
}

function decodeContainerId(e: eventsTtrpc.Envelope): string {
  // Every task event has container_id as field 1.
  return (events.TaskPaused.decode(e.event!.value) as { containerId: string }).containerId;
}

async function bundle(id: string, argv: string[], opts: Parameters<typeof makeBundle>[3] = {}): Promise<string> {
  ids.push(id);
  return makeBundle(image, join(dir, id), argv, opts);
}

async function connect(addr: string): Promise<void> {
  await client?.close().catch(() => {});
  client = await TtrpcClient.connect(addr);
  task = client.service(taskV2.TaskService);
}

async function shimPids(): Promise<number[]> {
  return (await findProcesses((argv) => argv[0] === 'containerd-shim-boxd-v2' && argv.includes(NS))).map((p) => p.pid);
}

beforeAll(async () => {
  dir = await tempDir('bx-rs-');
  image = await buildTestImage({ dir });
  env = {
    namespace: NS,
    address: join(dir, 'c.sock'),
    ttrpcAddress: join(dir, 'c.sock.ttrpc'),
    socketDir: join(dir, 's'),
    stateDir: join(dir, 'state'),
  };
  eventServer.addService(eventsTtrpc.EventsService, {
    async Forward(req, ctx) {
      expect(ctx.metadata['containerd-namespace-ttrpc']).toEqual([NS]);
      if (req.envelope) published.push(req.envelope);
      return {};
    },
  });
  await eventServer.listen(env.ttrpcAddress);
});

afterAll(async () => {
  await client?.close().catch(() => {});
  for (const id of ids) await run('runc', ['--root', RUNC_ROOT, 'delete', '--force', id]);
  for (const pid of await shimPids()) await terminate(pid, 1_000);
  await run('rm', ['-rf', RUNC_ROOT]);
  await eventServer.close({ graceful: false });
  await cleanupTempDirs();
});

describe('start and grouping', () => {
  it('start prints a socket address under the socket dir and writes it to the bundle', async () => {
    const b = await bundle('t-exit', ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    address = await shimStart(env, 't-exit', b);
    expect(address).toMatch(new RegExp(`^unix://${env.socketDir}/[0-9a-f]{64}$`));
    expect(await readFile(join(b, 'address'), 'utf8')).toBe(address);
    expect((await stat(address.slice('unix://'.length))).mode & 0o777).toBe(0o600);
    await connect(address);
    const res = await task.Connect({ id: 't-exit' }, call);
    expect(res.shimPid).toBeGreaterThan(0);
    expect(res.taskPid).toBe(0);
  });

  it('a second container of the namespace gets the same shim (per-namespace default)', async () => {
    const b = await bundle('t-second', ['true']);
    expect(await shimStart(env, 't-second', b)).toBe(address);
    expect(await shimPids()).toHaveLength(1);
  });

  it('the shell entry answers that start without starting Node.js', async () => {
    const b = await bundle('t-third', ['true']);
    // Any node started with this fails at once, so only the shell path can succeed.
    const r = await run(SHIM_BIN, ['-namespace', NS, '-address', env.address, '-id', 't-third', 'start'], {
      cwd: b,
      env: { ...shimEnv(env), NODE_OPTIONS: '--require=/nonexistent/boxd-test' },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(address);
    expect(await readFile(join(b, 'address'), 'utf8')).toBe(address);
  });

  it('Group.Join takes a task of its namespace without a start, and declines others', async () => {
    const b = await bundle('t-join', ['true']);
    const group = client!.service(boxdShim.GroupService);
    expect(await group.Join({ id: 't-join', namespace: NS, bundle: b }, call)).toEqual({ joined: true, address, joinsOnCreate: true });
    expect(await readFile(join(b, 'address'), 'utf8')).toBe(address);
    const other = await bundle('t-other-ns', ['true']);
    expect(await group.Join({ id: 't-other-ns', namespace: `${NS}-other`, bundle: other }, call)).toEqual({ joined: false, address: '', joinsOnCreate: true });
    expect(existsSync(join(other, 'address'))).toBe(false);
    await expect(group.Join({ id: 't-rel', namespace: NS, bundle: 'relative/dir' }, call)).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
  });

  it('a Create with the join header takes a task of its group in one call, and creates nothing for another', async () => {
    const other = await bundle('t-cj-other', ['true']);
    const declined = await task
      .Create({ id: 't-cj-other', bundle: other }, { ...call, metadata: { [SHIM_JOIN_HEADER]: `${NS}-other` } })
      .catch((e: unknown) => e);
    expect(errorCode(declined)).toBe(Code.FAILED_PRECONDITION);
    expect((declined as Error).message).toContain(SHIM_JOIN_DECLINED);
    expect(existsSync(join(other, 'address'))).toBe(false);
    expect((await run('runc', ['--root', RUNC_ROOT, 'state', 't-cj-other'])).code).not.toBe(0);

    const b = await bundle('t-cj', ['true']);
    const created = await task.Create({ id: 't-cj', bundle: b }, { ...call, metadata: { [SHIM_JOIN_HEADER]: NS } });
    expect(created.pid).toBeGreaterThan(0);
    expect(await readFile(join(b, 'address'), 'utf8')).toBe(address);
    const waiting = task.Wait({ id: 't-cj' }, call);
    await task.Start({ id: 't-cj' }, call);
    expect((await waiting).exitStatus).toBe(0);
    await task.Delete({ id: 't-cj' }, call);
  });

  it('per-container grouping gives a container its own shim', async () => {
    const b = await bundle('t-own', ['true']);
    const own = await shimStart({ ...env, grouping: 'per-container' }, 't-own', b);
    expect(own).not.toBe(address);
    const c = await TtrpcClient.connect(own);
    const svc = c.service(taskV2.TaskService);
    const { shimPid } = await svc.Connect({ id: 't-own' }, call);
    const mine = await task.Connect({ id: 'x' }, call);
    expect(shimPid).not.toBe(mine.shimPid);
    // Its rule sends any other task elsewhere, so it declines to take one.
    const joined = await c.service(boxdShim.GroupService).Join({ id: 't-own-2', namespace: NS, bundle: b }, call);
    expect(joined.joined).toBe(false);
    // No containers: Shutdown ends that shim and removes its socket.
    const closed = new Promise<void>((resolve) => c.onClose(() => resolve()));
    await svc.Shutdown({ id: 't-own' }, call).catch(() => {});
    await closed;
    await waitFor(() => !isAlive(shimPid), 5_000);
    expect(existsSync(own.slice('unix://'.length))).toBe(false);
  });
});

describe('init process life cycle', () => {
  let initPid = 0;
  let out: Awaited<ReturnType<typeof readFifo>>;
  let err: Awaited<ReturnType<typeof readFifo>>;

  it('Create runs runc create with stdout/stderr FIFOs; State says CREATED', async () => {
    const b = join(dir, 't-exit');
    out = await readFifo(join(dir, 't-exit-stdout'));
    err = await readFifo(join(dir, 't-exit-stderr'));
    const created = await task.Create(
      { id: 't-exit', bundle: b, stdout: join(dir, 't-exit-stdout'), stderr: join(dir, 't-exit-stderr') },
      call,
    );
    initPid = created.pid;
    expect(initPid).toBeGreaterThan(0);
    expect(Number(await readFile(join(b, 'init.pid'), 'utf8'))).toBe(initPid);
    expect(await task.State({ id: 't-exit' }, call)).toMatchObject({ id: 't-exit', bundle: b, pid: initPid, status: taskTypes.Status.CREATED });
  });

  it('Start + Wait report exit status 3 and the output arrives on the FIFOs', async () => {
    const waiting = task.Wait({ id: 't-exit' }, call);
    expect((await task.Start({ id: 't-exit' }, call)).pid).toBe(initPid);
    const waited = await waiting;
    expect(waited.exitStatus).toBe(3);
    expect(Math.abs(Number(waited.exitedAt!.seconds) - Date.now() / 1000)).toBeLessThan(60);
    await waitFor(() => out.text() === 'out\n' && err.text() === 'err\n', 5_000);
    expect(await task.State({ id: 't-exit' }, call)).toMatchObject({ status: taskTypes.Status.STOPPED, exitStatus: 3 });
  });

  it('Kill of an exited process is NOT_FOUND; Delete returns the exit and forgets the task', async () => {
    expect(isNotFound(await task.Kill({ id: 't-exit', signal: 9 }, call).catch((e: unknown) => e))).toBe(true);
    // The shim deletes the stopped container itself (no runc delete): its cgroups and runc state go.
    const runcState = JSON.parse(await readFile(join(RUNC_ROOT, 't-exit', 'state.json'), 'utf8')) as { cgroup_paths: Record<string, string> };
    const cgroups = Object.values(runcState.cgroup_paths);
    expect(cgroups.length).toBeGreaterThan(0);
    expect(cgroups.every((path) => existsSync(path))).toBe(true);
    expect(await task.Delete({ id: 't-exit' }, call)).toMatchObject({ pid: initPid, exitStatus: 3 });
    expect(cgroups.filter((path) => existsSync(path))).toEqual([]);
    expect(existsSync(join(RUNC_ROOT, 't-exit'))).toBe(false);
    const state = await task.State({ id: 't-exit' }, call).catch((e: unknown) => e);
    expect(isNotFound(state)).toBe(true);
    expect((state as Error).message).toContain('container not created');
    expect((await run('runc', ['--root', RUNC_ROOT, 'state', 't-exit'])).code).not.toBe(0);
    out.close();
    err.close();
  });

  it('published create, start, exit, delete in order', async () => {
    await waitFor(() => topicsFor('t-exit').includes('/tasks/delete'), 10_000);
    expect(topicsFor('t-exit')).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    const exit = published.find((e) => e.topic === '/tasks/exit' && decodeContainerId(e) === 't-exit')!;
    expect(exit.event!.type_url).toBe('containerd.events.TaskExit');
    expect(events.TaskExit.decode(exit.event!.value)).toMatchObject({ containerId: 't-exit', id: 't-exit', pid: initPid, exitStatus: 3 });
    expect(exit.namespace).toBe(NS);
  });

  it('Start lets runc\'s init go through its exec fifo: runc then says running; a second Start at once is refused', async () => {
    const b = await bundle('t-fifo', ['sleep', '30']);
    const created = await task.Create({ id: 't-fifo', bundle: b }, call);
    const fifo = join(RUNC_ROOT, 't-fifo', 'exec.fifo');
    expect(existsSync(fifo)).toBe(true);
    const results = await Promise.allSettled([task.Start({ id: 't-fifo' }, call), task.Start({ id: 't-fifo' }, call)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
    expect(errorCode(refused.reason)).toBe(Code.FAILED_PRECONDITION);
    expect(existsSync(fifo)).toBe(false);
    const state = JSON.parse((await run('runc', ['--root', RUNC_ROOT, 'state', 't-fifo'])).stdout) as { status: string; pid: number };
    expect(state).toMatchObject({ status: 'running', pid: created.pid });
    const waiting = task.Wait({ id: 't-fifo' }, call);
    await task.Kill({ id: 't-fifo', signal: 9 }, call);
    expect((await waiting).exitStatus).toBe(137);
    await task.Delete({ id: 't-fifo' }, call);
  });

  it('file:// appends stdout and stderr to the file', async () => {
    const b = await bundle('t-file', ['sh', '-c', 'echo to-out; echo to-err >&2']);
    const log = join(dir, 'logs', 'deep', 't-file.log');
    const uri = `file://${log}`;
    await task.Create({ id: 't-file', bundle: b, stdout: uri, stderr: uri }, call);
    const waiting = task.Wait({ id: 't-file' }, call);
    await task.Start({ id: 't-file' }, call);
    expect((await waiting).exitStatus).toBe(0);
    expect(await readFile(log, 'utf8')).toBe('to-out\nto-err\n');
    await task.Delete({ id: 't-file' }, call);
  });

  it('a bad stdio scheme is INVALID_ARGUMENT and leaves nothing behind', async () => {
    const b = await bundle('t-bad', ['true']);
    const e = await task.Create({ id: 't-bad', bundle: b, stdout: 'tcp://x', stderr: '' }, call).catch((x: unknown) => x);
    expect((e as Error).message).toContain('unknown STDIO scheme tcp');
    expect(isNotFound(await task.State({ id: 't-bad' }, call).catch((x: unknown) => x))).toBe(true);
  });
});

describe('a running container: rootfs mounts, exec, pids, pause, stats, update, kill', () => {
  const ID = 't-run';
  let b: string;
  let initPid = 0;

  beforeAll(async () => {
    b = await bundle(ID, ['sleep', '1000'], { emptyRootfs: true });
    const source = join(await unpackTestImage(image, join(dir, 'rootfs-src')), 'rootfs');
    const created = await task.Create(
      { id: ID, bundle: b, rootfs: [{ type: 'bind', source, options: ['rbind', 'rw'] }], options: { type_url: 'containerd.runc.v1.Options', value: runcOptions.Options.encode({}) } },
      call,
    );
    initPid = created.pid;
    await task.Start({ id: ID }, call);
  });

  it('mounted the rootfs from the Create mounts and wrote options.json', async () => {
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mounts).toContain(` ${join(b, 'rootfs')} `);
    expect(JSON.parse(await readFile(join(b, 'options.json'), 'utf8'))).toEqual({});
    expect(await task.State({ id: ID }, call)).toMatchObject({ status: taskTypes.Status.RUNNING, pid: initPid });
  });

  it('Exec + Start runs a process whose exit status Wait reports; events in order', async () => {
    const out = await readFifo(join(dir, 'exec-out'));
    const spec = { args: ['sh', '-c', 'echo in-exec; exit 5'], cwd: '/', env: ['PATH=/bin:/usr/bin'], user: { uid: 0, gid: 0 } };
    await task.Exec({ id: ID, execId: 'e1', stdout: join(dir, 'exec-out'), spec: packJsonAny(PROCESS_SPEC_TYPE_URL, spec) }, call);
    const dup = await task.Exec({ id: ID, execId: 'e1', spec: packJsonAny(PROCESS_SPEC_TYPE_URL, spec) }, call).catch((e: unknown) => e);
    expect(isAlreadyExists(dup)).toBe(true);
    const waiting = task.Wait({ id: ID, execId: 'e1' }, call);
    const { pid } = await task.Start({ id: ID, execId: 'e1' }, call);
    expect(pid).toBeGreaterThan(0);
    expect((await waiting).exitStatus).toBe(5);
    await waitFor(() => out.text() === 'in-exec\n', 5_000);
    expect(await task.State({ id: ID, execId: 'e1' }, call)).toMatchObject({ execId: 'e1', status: taskTypes.Status.STOPPED, exitStatus: 5, pid });
    expect(await task.Delete({ id: ID, execId: 'e1' }, call)).toMatchObject({ pid, exitStatus: 5 });
    out.close();
    await waitFor(() => topicsFor(ID).filter((t) => t.startsWith('/tasks/exec') || t === '/tasks/exit').length === 3, 5_000);
    expect(topicsFor(ID).filter((t) => t !== '/tasks/create' && t !== '/tasks/start')).toEqual(['/tasks/exec-added', '/tasks/exec-started', '/tasks/exit']);
  });

  it('Pids lists the init and a running exec with its ProcessDetails', async () => {
    const spec = { args: ['sleep', '1000'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } };
    await task.Exec({ id: ID, execId: 'e2', spec: packJsonAny(PROCESS_SPEC_TYPE_URL, spec) }, call);
    const { pid } = await task.Start({ id: ID, execId: 'e2' }, call);
    const { processes } = await task.Pids({ id: ID }, call);
    expect(processes.map((p) => p.pid).sort()).toEqual([initPid, pid].sort());
    const exec = processes.find((p) => p.pid === pid)!;
    expect(exec.info!.type_url).toBe('containerd.runc.v1.ProcessDetails');
    expect(runcOptions.ProcessDetails.decode(exec.info!.value).execId).toBe('e2');
  });

  it('Pause and Resume freeze and thaw the container', async () => {
    await task.Pause({ id: ID }, call);
    expect((await task.State({ id: ID }, call)).status).toBe(taskTypes.Status.PAUSED);
    const stat = await readFile(`/proc/${initPid}/stat`, 'utf8');
    expect(stat.slice(stat.lastIndexOf(')') + 2)[0]).toMatch(/[DS]/);
    await task.Resume({ id: ID }, call);
    expect((await task.State({ id: ID }, call)).status).toBe(taskTypes.Status.RUNNING);
    await waitFor(() => topicsFor(ID).includes('/tasks/resumed'), 5_000);
    expect(topicsFor(ID)).toContain('/tasks/paused');
  });

  it('Stats returns cgroup metrics; Update changes the memory limit they show', async () => {
    const before = await task.Stats({ id: ID }, call);
    expect(before.stats!.type_url).toBe('io.containerd.cgroups.v1.Metrics');
    const m = cgroupsV1.Metrics.decode(before.stats!.value);
    expect(Number(m.pids!.current)).toBe(2);
    expect(Number(m.memory!.usage!.usage)).toBeGreaterThan(0);
    expect(Number(m.cpu!.usage!.total)).toBeGreaterThan(0);

    const limit = 64 * 1024 * 1024;
    await task.Update({ id: ID, resources: packJsonAny(RESOURCES_TYPE_URL, { memory: { limit } }) }, call);
    const after = cgroupsV1.Metrics.decode((await task.Stats({ id: ID }, call)).stats!.value);
    expect(after.memory!.usage!.limit.toString()).toBe(String(limit));
  });

  it('Checkpoint runs runc checkpoint (criu); where criu cannot work, the error says why', async () => {
    const criuWorks = (await run('criu', ['check'])).code === 0;
    const image = join(dir, 'checkpoint');
    const result = await task.Checkpoint({ id: ID, path: image }, call).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    if (criuWorks) {
      expect(result).toBeUndefined();
      expect(existsSync(join(image, 'inventory.img'))).toBe(true);
      await waitFor(() => topicsFor(ID).includes('/tasks/checkpointed'), 5_000);
    } else {
      expect(result?.message).toMatch(/OCI runtime checkpoint failed: .*criu/i);
      expect(topicsFor(ID)).not.toContain('/tasks/checkpointed');
    }
    expect((await task.State({ id: ID }, call)).status).toBe(taskTypes.Status.RUNNING);
  });

  it('Delete of a running container is FAILED_PRECONDITION', async () => {
    const e = await task.Delete({ id: ID }, call).catch((x: unknown) => x);
    expect(errorCode(e)).toBe(Code.FAILED_PRECONDITION);
  });

  it('Kill with all signals every process; Wait returns 137; exec exits too', async () => {
    const init = task.Wait({ id: ID }, call);
    const exec = task.Wait({ id: ID, execId: 'e2' }, call);
    await task.Kill({ id: ID, signal: 9, all: true }, call);
    expect((await init).exitStatus).toBe(137);
    expect((await exec).exitStatus).toBe(137);
    await task.Delete({ id: ID }, call);
    expect((await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${join(b, 'rootfs')} `)).toBe(false);
  });
});

describe('many containers, one shim', () => {
  it('two running containers, one connection each as containerd opens them, one shim process that is their parent', async () => {
    const first = await bundle('t-pair-a', ['sleep', '1000']);
    const second = await bundle('t-pair-b', ['sleep', '1000']);
    const clients: TtrpcClient[] = [];
    const pids: number[] = [];
    const shims: number[] = [];
    for (const [id, b] of [['t-pair-a', first], ['t-pair-b', second]] as const) {
      const addr = await shimStart(env, id, b);
      const c = await TtrpcClient.connect(addr);
      clients.push(c);
      const svc = c.service(taskV2.TaskService);
      pids.push((await svc.Create({ id, bundle: b }, call)).pid);
      await svc.Start({ id }, call);
      shims.push((await svc.Connect({ id }, call)).shimPid);
    }
    expect(shims[0]).toBe(shims[1]);
    for (const pid of pids) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // ppid: the shim is a child subreaper, so runc's orphans are its children.
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])).toBe(shims[0]);
    }
    for (const [i, id] of ['t-pair-a', 't-pair-b'].entries()) {
      const svc = clients[i]!.service(taskV2.TaskService);
      const waiting = svc.Wait({ id }, call);
      await svc.Kill({ id, signal: 9 }, call);
      expect((await waiting).exitStatus).toBe(137);
      await svc.Delete({ id }, call);
      await clients[i]!.close();
    }
  });
});

describe('logging binary and OOM', () => {
  it('binary:// hands the pipes to a logging binary on fds 3 and 4 and waits for fd 5', async () => {
    const logger = join(dir, 'logger.sh');
    await writeFile(
      logger,
      // Ready once fd 5 is closed everywhere: before the copies start, which would inherit it.
      '#!/bin/sh\ndest=$2\necho "$CONTAINER_ID $CONTAINER_NAMESPACE" > "$dest.env"\nexec 6<&3 7<&4 5>&-\ncat <&6 > "$dest.out" &\ncat <&7 > "$dest.err" &\nwait\n',
      { mode: 0o755 },
    );
    const b = await bundle('t-bin', ['sh', '-c', 'echo to-out; echo to-err >&2']);
    const dest = join(dir, 'binlog');
    const uri = `binary://${logger}?dest=${encodeURIComponent(dest)}`;
    await task.Create({ id: 't-bin', bundle: b, stdout: uri, stderr: uri }, call);
    expect(await readFile(`${dest}.env`, 'utf8')).toBe(`t-bin ${NS}\n`);
    const waiting = task.Wait({ id: 't-bin' }, call);
    await task.Start({ id: 't-bin' }, call);
    expect((await waiting).exitStatus).toBe(0);
    await waitFor(async () => (await readFile(`${dest}.out`, 'utf8')) === 'to-out\n' && (await readFile(`${dest}.err`, 'utf8')) === 'to-err\n', 5_000);
    await task.Delete({ id: 't-bin' }, call);
  });

  it('a container killed by the OOM killer exits 137 and /tasks/oom is published', async () => {
    const b = await bundle('t-oom', ['sh', '-c', 'x=$(yes | head -c 100000000); echo survived'], { memoryLimit: 16 * 1024 * 1024 });
    await task.Create({ id: 't-oom', bundle: b }, call);
    const waiting = task.Wait({ id: 't-oom' }, call);
    await task.Start({ id: 't-oom' }, call);
    expect((await waiting).exitStatus).toBe(137);
    await waitFor(() => topicsFor('t-oom').includes('/tasks/oom') && topicsFor('t-oom').includes('/tasks/exit'), 5_000);
    expect(topicsFor('t-oom').indexOf('/tasks/oom')).toBeLessThan(topicsFor('t-oom').indexOf('/tasks/exit'));
    await task.Delete({ id: 't-oom' }, call);
  });

  it('each OOM in a running container is published as it happens, not only when init dies', async () => {
    // Three OOM kills of a subshell, 0.3 s apart; init lives on (the subshell volunteers as
    // the OOM killer's victim, which may otherwise pick init).
    const oomLoop = 'for i in 1 2 3; do (echo 1000 > /proc/self/oom_score_adj; x=$(yes | head -c 100000000)); sleep 0.3; done; exec sleep 60';
    const b = await bundle('t-ooms', ['sh', '-c', oomLoop], { memoryLimit: 16 * 1024 * 1024 });
    await task.Create({ id: 't-ooms', bundle: b }, call);
    const waiting = task.Wait({ id: 't-ooms' }, call);
    await task.Start({ id: 't-ooms' }, call);
    const ooms = () => topicsFor('t-ooms').filter((t) => t === '/tasks/oom').length;
    let kills = 0;
    try {
      await waitFor(() => ooms() >= 3, 5_000);
      expect(topicsFor('t-ooms')).not.toContain('/tasks/exit');
      expect((await task.State({ id: 't-ooms' }, call)).status).toBe(taskTypes.Status.RUNNING);
      // One event per kill, and the kernel's count is the measure: an OOM may also take a
      // member of the subshell's pipe, so the loop's three OOMs can be four kills or more.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const stats = cgroupsV1.Metrics.decode((await task.Stats({ id: 't-ooms' }, call)).stats!.value);
      kills = Number(stats.memoryOomControl?.oomKill ?? 0);
      expect(kills).toBeGreaterThanOrEqual(3);
      await waitFor(() => ooms() === kills, 2_000);
    } finally {
      // Also on failure: a container left running would hold up the shim's own exit below.
      await task.Kill({ id: 't-ooms', signal: 9 }, call);
      expect((await waiting).exitStatus).toBe(137);
      await task.Delete({ id: 't-ooms' }, call);
    }
    expect(ooms()).toBe(kills);
  });
});

describe('terminal', () => {
  it('a pty through the console socket; ResizePty sets the size the container sees', async () => {
    const b = await bundle('t-tty', ['sh', '-c', 'read x; stty size; echo "got $x"'], { terminal: true });
    const out = await readFifo(join(dir, 'tty-out'));
    const stdin = await writeFifo(join(dir, 'tty-in'));
    await task.Create({ id: 't-tty', bundle: b, terminal: true, stdin: join(dir, 'tty-in'), stdout: join(dir, 'tty-out') }, call);
    const writer = stdin.open();
    const waiting = task.Wait({ id: 't-tty' }, call);
    await task.Start({ id: 't-tty' }, call);
    await task.ResizePty({ id: 't-tty', width: 111, height: 33 }, call);
    writer.write('hello\n');
    expect((await waiting).exitStatus).toBe(0);
    await waitFor(() => out.text().includes('got hello'), 5_000);
    expect(out.text()).toContain('33 111');
    writer.destroy();
    out.close();
    await task.Delete({ id: 't-tty' }, call);
  });
});

describe('shim restart', () => {
  const ID = 't-survive';
  let oldShim = 0;

  it('containers keep running when the shim is killed; a new start adopts them', async () => {
    const b = await bundle(ID, ['sleep', '1000']);
    const uri = `file://${join(dir, 'survive.log')}`;
    const { pid } = await task.Create({ id: ID, bundle: b, stdout: uri, stderr: uri }, call);
    await task.Start({ id: ID }, call);
    oldShim = (await task.Connect({ id: ID }, call)).shimPid;
    process.kill(oldShim, 'SIGKILL');
    await waitFor(() => !isAlive(oldShim), 5_000);
    expect(isAlive(pid)).toBe(true);

    // containerd would run start again for the next task of the namespace.
    const again = await shimStart(env, ID, b);
    expect(again).toBe(address);
    await connect(again);
    const res = await task.Connect({ id: ID }, call);
    expect(res.shimPid).not.toBe(oldShim);
    expect(res.taskPid).toBe(pid);
    expect(await task.State({ id: ID }, call)).toMatchObject({ status: taskTypes.Status.RUNNING, pid });
  });

  it('SIGTERM stops a shim that is watching a running container for OOM at once; the next start adopts it', async () => {
    const { shimPid, taskPid } = await task.Connect({ id: ID }, call);
    process.kill(shimPid, 'SIGTERM');
    // Its OOM watch waits on a thread of libuv's pool, which the exit joins.
    await waitFor(() => !isAlive(shimPid), 2_000);
    expect(isAlive(taskPid)).toBe(true);
    await connect(await shimStart(env, ID, join(dir, ID)));
    expect(await task.State({ id: ID }, call)).toMatchObject({ status: taskTypes.Status.RUNNING, pid: taskPid });
  });

  it('Kill after the restart: Wait returns 137 and the exit event goes out', async () => {
    const waiting = task.Wait({ id: ID }, call);
    await task.Kill({ id: ID, signal: 9 }, call);
    expect((await waiting).exitStatus).toBe(137);
    await waitFor(() => topicsFor(ID).includes('/tasks/exit'), 5_000);
  });

  it('Shutdown with containers left keeps the shim; after the last Delete it exits', async () => {
    const { shimPid } = await task.Connect({ id: ID }, call);
    await task.Shutdown({ id: ID }, call);
    await new Promise((r) => setTimeout(r, 300));
    expect(isAlive(shimPid)).toBe(true);
    const del = await task.Delete({ id: ID }, call);
    expect(del.exitStatus).toBe(137);
    // t-second was started but never created: nothing else is left.
    const closed = new Promise<void>((resolve) => client!.onClose(() => resolve()));
    await task.Shutdown({ id: ID }, call).catch(() => {});
    await closed;
    await waitFor(() => !isAlive(shimPid), 5_000);
    expect(existsSync(address.slice('unix://'.length))).toBe(false);
  });

  it('delete prints a raw DeleteResponse with the recorded exit', async () => {
    const r = await shimDelete(env, ID, join(dir, ID));
    expect(r.code, r.stderr).toBe(0);
    const res = taskV2.DeleteResponse.decode(r.stdoutBytes);
    expect(res.exitStatus).toBe(137);
    expect(res.pid).toBeGreaterThan(0);
  });
});
