/**
 * One task: its bundle, rootfs mounts, OCI runtime, init process and execs; every
 * Task rpc that concerns a single container ends up here.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  events,
  runcOptions,
  taskTypes,
  taskV2,
  type Init,
} from '@boxd/api';
import type { Logger } from 'pino';
import { cgroupPathsOf, metricsAny, oomKills, type CgroupPaths } from './cgroups.js';
import type { EventSink } from './events.js';
import type { LivenessWatcher } from './liveness.js';
import type { Launcher } from './launch.js';
import { mountAll, unmountAll } from './mounts.js';
import { exitCodeOf } from './native.js';
import type { OomEvents, StopWatch } from './oom-events.js';
import { ShimProcess } from './process.js';
import type { Reaper, ExitWindow } from './reaper.js';
import { nowNanos, processStartTime, saveContainer, saveInitExit, type ContainerRecord, type ExitRecord } from './records.js';
import { Runtime, RuntimeError, runtimeConfig } from './runc.js';
import { openProcessIO, type StdioSpec } from './stdio.js';

export interface ShimContext {
  namespace: string;
  reaper: Reaper;
  /** Starts the runtime's calls (runc, crun); their exits come through `reaper`. */
  launch: Launcher;
  liveness: LivenessWatcher;
  oom: OomEvents;
  events: EventSink;
  logger: Logger;
  /** Scratch space for console sockets and exec process files. */
  tempDir: string;
}

/** Output still in flight when a process exits gets this long to reach the client. */
const DRAIN_TIMEOUT_MS = 2_000;
/**
 * When, after an OOM notice, its kills are looked for again: most are counted within
 * ~100 ms, but a second victim of the same OOM can be counted later, with no notice of
 * its own.
 */
const OOM_RECHECKS_MS = [100, 1_000];
/** Exit status when a process died while no shim could wait for it. */
export const UNKNOWN_EXIT_STATUS = 255;

const STATUS: Record<string, taskTypes.Status> = {
  created: taskTypes.Status.CREATED,
  running: taskTypes.Status.RUNNING,
  paused: taskTypes.Status.PAUSED,
  stopped: taskTypes.Status.STOPPED,
};

/** runc Options from CreateTaskRequest.options (empty Any or none means defaults). */
export function decodeRuncOptions(any: { type_url: string; value: Uint8Array } | null | undefined): runcOptions.Options | undefined {
  if (!any || !any.type_url) return undefined;
  if (!any.type_url.endsWith('containerd.runc.v1.Options')) return undefined;
  return runcOptions.Options.decode(any.value);
}

/** options.json as upstream writes it (Go JSON field names, empty fields left out). */
function optionsJson(options: runcOptions.Options | undefined): string {
  if (!options) return '{}';
  const out: Record<string, unknown> = {};
  const names: [keyof runcOptions.Options, string][] = [
    ['noPivotRoot', 'no_pivot_root'],
    ['noNewKeyring', 'no_new_keyring'],
    ['shimCgroup', 'shim_cgroup'],
    ['ioUid', 'io_uid'],
    ['ioGid', 'io_gid'],
    ['binaryName', 'binary_name'],
    ['root', 'root'],
    ['criuPath', 'criu_path'],
    ['systemdCgroup', 'systemd_cgroup'],
    ['criuImagePath', 'criu_image_path'],
    ['criuWorkPath', 'criu_work_path'],
  ];
  for (const [field, json] of names) if (options[field]) out[json] = options[field];
  return JSON.stringify(out);
}

function readPid(path: string): number {
  const pid = Number(readFileSync(path, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`bad pid file ${path}`);
  return pid;
}

function sharesHostPidNamespace(bundle: string): boolean {
  try {
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { linux?: { namespaces?: { type: string; path?: string }[] } };
    return !spec.linux?.namespaces?.some((n) => n.type === 'pid' && !n.path);
  } catch {
    return false;
  }
}

/** runc's words for "that container/process is gone" become NOT_FOUND, as upstream. */
function notRunning(err: unknown): boolean {
  return err instanceof RuntimeError && /not running|does not exist|no such process|container not found/i.test(err.detail);
}

export class Container {
  readonly init: ShimProcess;
  readonly execs = new Map<string, ShimProcess>();
  private cgroup?: CgroupPaths;
  /** The cgroup's OOM kills before we watched, and those told of since. */
  private oomKillsBefore = 0n;
  private oomKillsAnnounced = 0n;
  private stopOomWatch?: StopWatch;
  private oomRechecks: NodeJS.Timeout[] = [];
  private checkpointToRestore = '';
  /** A Start of init is under way: a second one would wait on the exec fifo for ever. */
  private initStarting = false;

  private constructor(
    readonly id: string,
    readonly bundle: string,
    readonly runtime: Runtime,
    private rootfsMounted: boolean,
    init: ShimProcess,
    private readonly ctx: ShimContext,
  ) {
    this.init = init;
  }

  private get rootfs(): string {
    return join(this.bundle, 'rootfs');
  }

  toRecord(): ContainerRecord {
    const execs: ContainerRecord['execs'] = {};
    for (const [id, p] of this.execs) if (p.pid) execs[id] = p.toRecord();
    return {
      version: 1,
      id: this.id,
      namespace: this.ctx.namespace,
      bundle: this.bundle,
      runtime: this.runtime.config,
      rootfsMounted: this.rootfsMounted,
      init: this.init.toRecord(),
      execs,
    };
  }

  persist(): void {
    saveContainer(this.toRecord());
  }

  static async create(req: taskV2.CreateTaskRequest, ctx: ShimContext): Promise<Container> {
    const options = decodeRuncOptions(req.options);
    const config = runtimeConfig(ctx.namespace, options);
    writeFileSync(join(req.bundle, 'options.json'), optionsJson(options));
    writeFileSync(join(req.bundle, 'runtime'), options?.binaryName ?? '');
    const stdio: StdioSpec = { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal };
    const container = new Container(req.id, req.bundle, new Runtime(config, req.bundle, ctx.launch), false, new ShimProcess('', stdio), ctx);
    if (req.rootfs.length) {
      mkdirSync(container.rootfs, { recursive: true, mode: 0o711 });
      await mountAll(req.rootfs, container.rootfs);
      container.rootfsMounted = true;
    }
    try {
      if (req.checkpoint) container.checkpointToRestore = req.checkpoint;
      else await container.createInit(options);
    } catch (err) {
      container.releaseRootfs();
      throw err;
    }
    ctx.events.publish<events.TaskCreate>('/tasks/create', events.TaskCreate, {
      containerId: req.id,
      bundle: req.bundle,
      rootfs: req.rootfs,
      io: stdio,
      checkpoint: req.checkpoint,
      pid: container.init.pid,
    });
    return container;
  }

  private async createInit(options: runcOptions.Options | undefined): Promise<void> {
    const init = this.init;
    const io = await openProcessIO(init.stdio, this.ioContext());
    const window = this.ctx.reaper.openWindow();
    try {
      const pidFile = join(this.bundle, 'init.pid');
      await this.runtime.create(this.id, {
        pidFile,
        consoleSocket: io.consoleSocket,
        noPivot: options?.noPivotRoot,
        noNewKeyring: options?.noNewKeyring,
        stdio: io.runcStdio,
      });
      init.pid = readPid(pidFile);
      await io.attached();
      init.io = io;
      this.adopt(init, window);
    } catch (err) {
      io.close();
      await this.runtime.delete(this.id, true).catch(() => {});
      throw err;
    } finally {
      window.close();
    }
  }

  private ioContext() {
    return { containerId: this.id, namespace: this.ctx.namespace, tempDir: this.ctx.tempDir };
  }

  /** Records a freshly started process and starts waiting for it. */
  private adopt(p: ShimProcess, window: ExitWindow): void {
    p.startTime = processStartTime(p.pid) ?? '';
    this.persist();
    this.ctx.reaper.watch(p.pid, (status) => void this.exited(p, exitCodeOf(status)), window);
  }

  /** Adopted by a restarted shim: a live process is watched, a dead one gets its best known status. */
  static recover(record: ContainerRecord, ctx: ShimContext): Container {
    const runtime = new Runtime(record.runtime, record.bundle, ctx.launch);
    const container = new Container(record.id, record.bundle, runtime, record.rootfsMounted, ShimProcess.fromRecord(record.init), ctx);
    for (const [id, r] of Object.entries(record.execs)) container.execs.set(id, ShimProcess.fromRecord(r));
    for (const p of [container.init, ...container.execs.values()]) {
      if (!p.pid || p.exit) continue;
      const alive = processStartTime(p.pid) === p.startTime;
      if (alive) ctx.liveness.watch(p.pid, p.startTime, () => void container.exited(p, container.guessedExit(p)));
      else void container.exited(p, container.guessedExit(p));
    }
    if (container.init.running) container.watchOom();
    return container;
  }

  /**
   * A process we could not wait for: dead after our signal means that signal killed it
   * (exact for SIGKILL, the usual case); otherwise the status is unknown.
   */
  private guessedExit(p: ShimProcess): number {
    return p.lastSignal ? 128 + p.lastSignal : UNKNOWN_EXIT_STATUS;
  }

  private async exited(p: ShimProcess, status: number): Promise<void> {
    if (p.exit) return;
    // On disk first: a shim killed from here on still knows the status.
    p.setExited({ status, at: nowNanos() });
    this.persist();
    if (p === this.init) saveInitExit(this.bundle, p.exit!);
    this.ctx.logger.debug({ id: this.id, execId: p.execId, pid: p.pid, status }, 'process exited');
    if (p === this.init) {
      this.stopWatchingOom();
      this.announceOomKills();
      // Without its own pid namespace nothing kills the rest of the container for us.
      if (sharesHostPidNamespace(this.bundle)) await this.runtime.kill(this.id, 9, true).catch(() => {});
    }
    if (p.io) {
      const timeout = new Promise((r) => setTimeout(r, DRAIN_TIMEOUT_MS).unref());
      await Promise.race([p.io.drained(), timeout]);
    }
    await p.startAnnounced;
    this.ctx.events.publish<events.TaskExit>('/tasks/exit', events.TaskExit, {
      containerId: this.id,
      id: p.execId || this.id,
      pid: p.pid,
      exitStatus: status,
      exitedAt: p.exitedAt(),
    });
    p.releaseWaiters();
  }

  process(execId: string): ShimProcess {
    if (!execId) return this.init;
    const p = this.execs.get(execId);
    if (!p) throw new NotFoundError(`process ${execId} does not exist ${this.id}`);
    return p;
  }

  async start(execId: string): Promise<number> {
    const p = this.process(execId);
    if (execId ? p.pid : p.status !== 'created' || this.initStarting) throw new FailedPreconditionError(`process ${execId || this.id} already started`);
    if (!execId) {
      this.initStarting = true;
      try {
        if (this.checkpointToRestore) await this.restoreInit();
        else await this.runtime.start(this.id, () => !this.init.exit);
      } finally {
        this.initStarting = false;
      }
      if (!this.init.exit) this.init.status = 'running';
      this.persist();
      this.watchOom();
      this.ctx.events.publish<events.TaskStart>('/tasks/start', events.TaskStart, { containerId: this.id, pid: this.init.pid });
      this.init.announceStart();
      return this.init.pid;
    }
    await this.startExec(p);
    this.ctx.events.publish<events.TaskExecStarted>('/tasks/exec-started', events.TaskExecStarted, {
      containerId: this.id,
      execId,
      pid: p.pid,
    });
    p.announceStart();
    return p.pid;
  }

  private async startExec(p: ShimProcess): Promise<void> {
    if (!this.init.running) throw new FailedPreconditionError(`container ${this.id} is not running`);
    const io = await openProcessIO(p.stdio, this.ioContext());
    const dir = await mkdtemp(join(this.ctx.tempDir, 'runc-process'));
    const processFile = join(dir, 'process.json');
    writeFileSync(processFile, JSON.stringify(p.spec ?? {}));
    const window = this.ctx.reaper.openWindow();
    try {
      const pidFile = join(this.bundle, `${p.execId}.pid`);
      await this.runtime.exec(this.id, { processFile, pidFile, consoleSocket: io.consoleSocket, stdio: io.runcStdio });
      p.pid = readPid(pidFile);
      await io.attached();
      p.io = io;
      p.status = 'running';
      p.spec = undefined;
      this.adopt(p, window);
    } catch (err) {
      io.close();
      throw err;
    } finally {
      window.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private async restoreInit(): Promise<void> {
    const init = this.init;
    const io = await openProcessIO(init.stdio, this.ioContext());
    const window = this.ctx.reaper.openWindow();
    try {
      const pidFile = join(this.bundle, 'init.pid');
      await this.runtime.restore(this.id, { pidFile, imagePath: this.checkpointToRestore, consoleSocket: io.consoleSocket, stdio: io.runcStdio });
      init.pid = readPid(pidFile);
      await io.attached();
      init.io = io;
      this.checkpointToRestore = '';
      this.adopt(init, window);
    } catch (err) {
      io.close();
      throw err;
    } finally {
      window.close();
    }
  }

  exec(req: taskV2.ExecProcessRequest): void {
    if (this.execs.has(req.execId)) throw new AlreadyExistsError(`id ${req.execId}`);
    if (!this.init.running) throw new FailedPreconditionError(`container ${this.id} is not running`);
    const p = new ShimProcess(req.execId, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal });
    p.spec = req.spec?.value?.length ? JSON.parse(Buffer.from(req.spec.value).toString('utf8')) : {};
    this.execs.set(req.execId, p);
    this.ctx.events.publish<events.TaskExecAdded>('/tasks/exec-added', events.TaskExecAdded, { containerId: this.id, execId: req.execId });
  }

  state(execId: string): Init<taskV2.StateResponse> {
    const p = this.process(execId);
    return {
      id: execId || this.id,
      bundle: this.bundle,
      pid: p.pid,
      status: STATUS[p.status] ?? taskTypes.Status.UNKNOWN,
      stdin: p.stdio.stdin,
      stdout: p.stdio.stdout,
      stderr: p.stdio.stderr,
      terminal: p.stdio.terminal,
      exitStatus: p.exit?.status ?? 0,
      exitedAt: p.exitedAt(),
      execId,
    };
  }

  async kill(execId: string, signal: number, all: boolean): Promise<void> {
    const p = this.process(execId);
    if (p.exit) throw new NotFoundError('process already finished');
    p.lastSignal = signal;
    if (p.pid) this.persist();
    if (p === this.init) {
      try {
        await this.runtime.kill(this.id, signal, all);
      } catch (err) {
        if (notRunning(err)) throw new NotFoundError('process already finished');
        throw err;
      }
      return;
    }
    if (!p.pid) throw new FailedPreconditionError(`process ${execId} not started`);
    try {
      process.kill(p.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw new NotFoundError('process already finished');
      throw err;
    }
  }

  /** Deletes an exec (only once it has exited). */
  deleteExec(execId: string): Init<taskV2.DeleteResponse> {
    const p = this.process(execId);
    if (p.running) throw new FailedPreconditionError(`cannot delete a running process ${execId}`);
    this.execs.delete(execId);
    p.io?.close();
    rmSync(join(this.bundle, `${execId}.pid`), { force: true });
    this.persist();
    return { pid: p.pid, exitStatus: p.exit?.status ?? 0, exitedAt: p.exitedAt() };
  }

  /** Deletes the container: the runc container, its rootfs mounts; /tasks/delete goes out. */
  async delete(): Promise<Init<taskV2.DeleteResponse>> {
    const init = this.init;
    if (init.running && init.status !== 'created') throw new FailedPreconditionError(`cannot delete a running container ${this.id}`);
    // Never started: its exit (runc delete kills it) has no /tasks/start to wait for.
    init.announceStart();
    try {
      const exited = init.status !== 'created' && init.pid > 0;
      await (exited ? this.runtime.deleteStopped(this.id) : this.runtime.delete(this.id, true));
    } catch (err) {
      if (!notRunning(err)) throw err;
    }
    if (init.pid && !init.exit) await Promise.race([init.wait(), new Promise((r) => setTimeout(r, 2_000).unref())]);
    for (const p of [init, ...this.execs.values()]) {
      p.io?.close();
      this.ctx.reaper.unwatch(p.pid);
      this.ctx.liveness.unwatch(p.pid);
    }
    this.releaseRootfs();
    this.persist();
    const exit: ExitRecord | undefined = init.exit;
    const response = { pid: init.pid, exitStatus: exit?.status ?? 0, exitedAt: init.exitedAt() };
    this.ctx.events.publish<events.TaskDelete>('/tasks/delete', events.TaskDelete, { containerId: this.id, ...response, id: this.id });
    return response;
  }

  private releaseRootfs(): void {
    if (!this.rootfsMounted) return;
    unmountAll(this.rootfs);
    this.rootfsMounted = false;
  }

  async pids(): Promise<Init<taskV2.PidsResponse>> {
    const pids = await this.runtime.ps(this.id);
    const execByPid = new Map([...this.execs.values()].filter((p) => p.pid).map((p) => [p.pid, p.execId]));
    return {
      processes: pids.map((pid) => {
        const execId = execByPid.get(pid);
        return execId
          ? { pid, info: { type_url: 'containerd.runc.v1.ProcessDetails', value: runcOptions.ProcessDetails.encode({ execId }) } }
          : { pid };
      }),
    };
  }

  async pause(): Promise<void> {
    if (!this.init.running) throw new FailedPreconditionError(`container ${this.id} is not running`);
    await this.runtime.pause(this.id);
    this.init.status = 'paused';
    this.persist();
    this.ctx.events.publish<events.TaskPaused>('/tasks/paused', events.TaskPaused, { containerId: this.id });
  }

  async resume(): Promise<void> {
    if (this.init.status !== 'paused') throw new FailedPreconditionError(`container ${this.id} is not paused`);
    await this.runtime.resume(this.id);
    this.init.status = 'running';
    this.persist();
    this.ctx.events.publish<events.TaskResumed>('/tasks/resumed', events.TaskResumed, { containerId: this.id });
  }

  async update(resources: Uint8Array): Promise<void> {
    if (!this.init.running) throw new FailedPreconditionError(`container ${this.id} is not running`);
    await this.runtime.update(this.id, Buffer.from(resources).toString('utf8'));
  }

  async checkpoint(path: string, options: runcOptions.CheckpointOptions | undefined): Promise<void> {
    if (!this.init.running) throw new FailedPreconditionError(`container ${this.id} is not running`);
    const args = ['--image-path', path || options?.imagePath || ''];
    const workPath = options?.workPath;
    if (workPath) args.push('--work-path', workPath);
    if (!options?.exit) args.push('--leave-running');
    if (options?.openTcp) args.push('--tcp-established');
    if (options?.externalUnixSockets) args.push('--ext-unix-sk');
    if (options?.terminal || this.init.stdio.terminal) args.push('--shell-job');
    if (options?.fileLocks) args.push('--file-locks');
    for (const ns of options?.emptyNamespaces ?? []) args.push('--empty-ns', ns);
    if (options?.cgroupsMode) args.push('--manage-cgroups-mode', options.cgroupsMode);
    await this.runtime.checkpoint(this.id, args);
    this.ctx.events.publish<events.TaskCheckpointed>('/tasks/checkpointed', events.TaskCheckpointed, { containerId: this.id, checkpoint: path });
  }

  stats(): { type_url: string; value: Uint8Array } {
    const paths = this.cgroup ?? (this.init.running ? cgroupPathsOf(this.init.pid) : undefined);
    if (!paths) throw new FailedPreconditionError(`container ${this.id} has no cgroup (not running)`);
    return metricsAny(paths);
  }

  resize(execId: string, width: number, height: number): void {
    const p = this.process(execId);
    if (!p.io) throw new FailedPreconditionError(`process ${execId || this.id} has no attached stdio`);
    p.io.resize(width, height);
  }

  closeIO(execId: string, stdin: boolean): void {
    if (stdin) this.process(execId).io?.closeStdin();
  }

  private watchOom(): void {
    if (!this.init.running) return;
    this.stopWatchingOom();
    this.cgroup = cgroupPathsOf(this.init.pid);
    if (!this.cgroup) return;
    this.oomKillsBefore = oomKills(this.cgroup);
    // Registering waits until the Start answer is out; an OOM before then is still counted.
    setImmediate(() => this.registerOomWatch());
  }

  private registerOomWatch(): void {
    if (!this.init.running || !this.cgroup || this.stopOomWatch) return;
    try {
      this.stopOomWatch = this.ctx.oom.watch(this.cgroup, () => this.oomNoticed());
    } catch (err) {
      // Init's exit still tells of an OOM that killed it (announceOomKills).
      this.ctx.logger.warn({ id: this.id, err }, 'cannot watch the cgroup for OOM');
    }
    this.announceOomKills();
  }

  private stopWatchingOom(): void {
    this.stopOomWatch?.();
    this.stopOomWatch = undefined;
    this.cancelOomRechecks();
  }

  private cancelOomRechecks(): void {
    for (const timer of this.oomRechecks.splice(0)) clearTimeout(timer);
  }

  /** The kernel signals as an OOM starts; the kills it ends in are counted a moment later. */
  private oomNoticed(): void {
    this.announceOomKills();
    this.cancelOomRechecks();
    this.oomRechecks = OOM_RECHECKS_MS.map((ms) => setTimeout(() => this.announceOomKills(), ms).unref());
  }

  /** Publishes one /tasks/oom for each OOM kill the cgroup counted and we have not told of. */
  private announceOomKills(): void {
    if (!this.cgroup) return;
    const kills = oomKills(this.cgroup) - this.oomKillsBefore;
    for (; this.oomKillsAnnounced < kills; this.oomKillsAnnounced++) {
      this.ctx.events.publish<events.TaskOOM>('/tasks/oom', events.TaskOOM, { containerId: this.id });
    }
  }
}
