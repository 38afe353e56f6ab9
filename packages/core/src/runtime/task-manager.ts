/**
 * The tasks the core runs through shims: starting a shim per task (or
 * reusing the one the shim's grouping rule picks), keeping a ttrpc
 * connection to it, noticing when it dies, and finding every shim again
 * after the core restarts.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import {
  AlreadyExistsError,
  Code,
  events,
  isCode,
  NotFoundError,
  SHIM_JOIN_DECLINED,
  SHIM_JOIN_HEADER,
  taskV2,
  timestampFromDate,
  type Init,
  type ServiceClient,
  protobuf,
} from '@boxd/api';
import type { TtrpcClient } from '@boxd/ttrpc';
import type { EventPublisher } from '../events.js';
import { bundlePaths, createBundle, followShimLog, listBundles, readBundleFile, removeBundle, removeHiddenLeftovers, type BundlePaths } from './bundle.js';
import { deleteShim, shimBinaryName, startShim, type ShimContext } from './shim-process.js';
import { findExecutable } from '../executables.js';
import { ShimGroups } from './shim-groups.js';

export interface RuntimeOptions {
  root: string;
  state: string;
  address: string;
  ttrpcAddress: string;
  publishBinary: string;
  /** Runtime name → shim binary; ours serves io.containerd.runc.v2 by default. */
  shims: Record<string, string>;
}

export interface ShimTask {
  ns: string;
  id: string;
  paths: BundlePaths;
  ctx: ShimContext;
  client: TtrpcClient;
  task: ServiceClient<typeof taskV2.TaskService>;
  log?: Socket;
  /** Set once Delete succeeded: a closing connection is then expected. */
  deleted: boolean;
  /** Stops watching the (possibly shared) connection for this task. */
  unwatch?: () => void;
}

export interface CreateParams {
  ns: string;
  id: string;
  runtime: string;
  spec: Uint8Array;
  options?: Init<protobuf.Any> | null;
  request: Init<taskV2.CreateTaskRequest>;
}

const key = (ns: string, id: string) => `${ns}/${id}`;

export class TaskManager {
  private readonly tasks = new Map<string, ShimTask>();
  private readonly creating = new Set<string>();
  /** Bundles of finished tasks still being removed, by task key. */
  private readonly removals = new Map<string, Promise<void>>();
  private readonly shims: ShimGroups;

  constructor(
    private readonly options: RuntimeOptions,
    private readonly publisher: EventPublisher,
    private readonly logger: Logger,
  ) {
    this.shims = new ShimGroups(logger);
  }

  get(ns: string, id: string): ShimTask {
    const t = this.tasks.get(key(ns, id));
    if (!t) throw new NotFoundError(`task ${id}`);
    return t;
  }

  list(ns: string): ShimTask[] {
    return [...this.tasks.values()].filter((t) => t.ns === ns);
  }

  async create(params: CreateParams): Promise<{ task: ShimTask; pid: number }> {
    const k = key(params.ns, params.id);
    if (this.tasks.has(k) || this.creating.has(k)) throw new AlreadyExistsError(`task ${params.id}`);
    this.creating.add(k);
    const paths = bundlePaths(this.options.root, this.options.state, params.ns, params.id);
    try {
      await this.removals.get(k);
      const binary = findExecutable(shimBinaryName(params.runtime, this.options.shims), 'runtime binary');
      await createBundle(paths, params.spec, binary).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') throw new AlreadyExistsError(`bundle for task ${params.id}`);
        throw err;
      });
      const ctx = this.shimContext(params.ns, params.id, paths, binary);
      const request = { ...params.request, id: params.id, bundle: paths.bundle, options: params.options };
      let task: ShimTask | undefined;
      try {
        const joined = await this.createJoining(params, paths, ctx, request);
        if (joined && joined !== 'declined') return joined;
        // A shim that declined a Create joining it declines a Join by the same rule.
        task = await this.startAndAttach(params.ns, params.id, paths, ctx, params.options, joined !== 'declined');
        const res = await task.task.Create(request);
        return { task, pid: res.pid };
      } catch (err) {
        if (task) this.forget(task);
        await deleteShim(ctx).catch(() => undefined);
        throw err;
      }
    } catch (err) {
      await removeBundle(paths).catch(() => undefined);
      throw err;
    } finally {
      this.creating.delete(k);
    }
  }

  /**
   * Join and Create in one call, on the shim that took this namespace's last task, where
   * that shim said it takes tasks so. 'declined' when it declines, undefined when there
   * is no such shim (or it is gone): then the usual way, `start` (or Join) and Create.
   */
  private async createJoining(
    params: CreateParams,
    paths: BundlePaths,
    ctx: ShimContext,
    request: Init<taskV2.CreateTaskRequest>,
  ): Promise<{ task: ShimTask; pid: number } | 'declined' | undefined> {
    const address = this.shims.joinsOnCreate(ctx);
    if (!address) return undefined;
    const client = await this.shims.client(address).catch(() => undefined);
    if (!client) return undefined;
    const task = this.attach(params.ns, params.id, paths, ctx, client);
    try {
      const res = await task.task.Create(request, { metadata: { [SHIM_JOIN_HEADER]: params.ns } });
      return { task, pid: res.pid };
    } catch (err) {
      this.forget(task);
      if (isCode(err, Code.FAILED_PRECONDITION) && (err as Error).message.includes(SHIM_JOIN_DECLINED)) return 'declined';
      throw err;
    }
  }

  /**
   * A grouping shim can exit (idle) between answering `start` with its
   * address and our dial: then `start` again, which spawns a fresh one.
   */
  private async startAndAttach(ns: string, id: string, paths: BundlePaths, ctx: ShimContext, options: CreateParams['options'], mayJoin: boolean): Promise<ShimTask> {
    const joined = mayJoin ? await this.shims.join(ctx) : undefined;
    if (joined) return this.attach(ns, id, paths, ctx, joined);
    // A shim started for this task writes its own log to the bundle's FIFO; a joined one has its log already.
    const log = followShimLog(paths.bundle, this.logger);
    try {
      return await this.startAttached(ns, id, paths, ctx, options, log);
    } catch (err) {
      log?.destroy();
      throw err;
    }
  }

  private async startAttached(ns: string, id: string, paths: BundlePaths, ctx: ShimContext, options: CreateParams['options'], log?: Socket): Promise<ShimTask> {
    for (let attempt = 0; ; attempt++) {
      const address = await startShim(ctx, options);
      try {
        const task = this.attach(ns, id, paths, ctx, await this.shims.client(address), log);
        this.shims.started(ctx, address);
        return task;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (attempt >= 2 || !(code === 'ENOENT' || code === 'ECONNREFUSED' || /ENOENT|ECONNREFUSED/.test(String(err)))) throw err;
        this.logger.debug({ task: id, address }, 'shim gone before we connected; starting again');
      }
    }
  }

  private shimContext(ns: string, id: string, paths: BundlePaths, binary: string): ShimContext {
    const o = this.options;
    return { binary, bundle: paths.bundle, namespace: ns, id, address: o.address, ttrpcAddress: o.ttrpcAddress, publishBinary: o.publishBinary };
  }

  private attach(ns: string, id: string, paths: BundlePaths, ctx: ShimContext, client: TtrpcClient, log?: Socket): ShimTask {
    const task: ShimTask = { ns, id, paths, ctx, client, task: client.service(taskV2.TaskService), log, deleted: false };
    this.tasks.set(key(ns, id), task);
    task.unwatch = client.onClose(() => {
      if (!task.deleted) void this.shimDied(task);
    });
    return task;
  }

  /**
   * After a successful Delete: shut the shim down (a grouping shim stays for others) and
   * clean up. The bundle is removed after the caller has its answer; a new task of the
   * same id waits for that removal before laying out its own bundle.
   */
  async finish(task: ShimTask): Promise<void> {
    task.deleted = true;
    await task.task.Shutdown({ id: task.id }, { timeoutMs: 3000 }).catch(() => undefined);
    this.forget(task);
    const k = key(task.ns, task.id);
    const removal = removeBundle(task.paths)
      .catch((err) => this.logger.warn({ err, task: task.id }, 'bundle removal failed'))
      .finally(() => {
        if (this.removals.get(k) === removal) this.removals.delete(k);
      });
    this.removals.set(k, removal);
  }

  /** Drops the task; its shim's connection stays for the shim's other tasks, and goes when the shim does. */
  private forget(task: ShimTask): void {
    task.deleted = true;
    this.tasks.delete(key(task.ns, task.id));
    task.unwatch?.();
    task.log?.destroy();
  }

  /** The shim went away with the task still registered: report its end as containerd does. */
  private async shimDied(task: ShimTask): Promise<void> {
    if (this.tasks.get(key(task.ns, task.id)) !== task) return;
    this.logger.warn({ ns: task.ns, task: task.id }, 'shim connection lost; cleaning up');
    this.forget(task);
    const res = await deleteShim(task.ctx).catch(() => ({ pid: 0, exitStatus: 255, exitedAt: timestampFromDate() }));
    const exitedAt = res.exitedAt ?? timestampFromDate();
    await removeBundle(task.paths).catch(() => undefined);
    this.publisher.publish(task.ns, '/tasks/exit', events.TaskExit, { containerId: task.id, id: task.id, pid: res.pid, exitStatus: res.exitStatus, exitedAt });
    this.publisher.publish(task.ns, '/tasks/delete', events.TaskDelete, { containerId: task.id, pid: res.pid, exitStatus: res.exitStatus, exitedAt });
  }

  /** On core start: reconnect to every shim in the state dir, clean up after dead ones. */
  async recover(): Promise<void> {
    await removeHiddenLeftovers(this.options.state);
    for (const { ns, id } of await listBundles(this.options.state)) {
      const paths = bundlePaths(this.options.root, this.options.state, ns, id);
      const binary = (await readBundleFile(paths.bundle, 'shim-binary-path')) ?? '';
      const address = await readBundleFile(paths.bundle, 'address');
      const ctx = this.shimContext(ns, id, paths, binary);
      try {
        if (!address) throw new NotFoundError('no shim address');
        const log = followShimLog(paths.bundle, this.logger);
        const task = this.attach(ns, id, paths, ctx, await this.shims.client(address), log);
        await task.task.Connect({ id }, { timeoutMs: 5000 });
        this.logger.info({ ns, task: id }, 'reconnected to shim');
      } catch (err) {
        this.logger.warn({ err, ns, task: id }, 'shim unreachable; cleaning up its bundle');
        const known = this.tasks.get(key(ns, id));
        if (known) this.forget(known);
        if (binary) await deleteShim(ctx).catch(() => undefined);
        await removeBundle(paths).catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.removals.values());
    for (const t of this.tasks.values()) {
      t.deleted = true;
      t.log?.destroy();
    }
    this.tasks.clear();
    await this.shims.close();
  }
}
