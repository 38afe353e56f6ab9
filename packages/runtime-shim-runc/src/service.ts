/**
 * `containerd.task.v2.Task` for every container this shim serves. Requests carry the
 * task id; unknown ids are NOT_FOUND (`container not created`), as upstream.
 */
import {
  AlreadyExistsError,
  NotFoundError,
  runcOptions,
  type ServiceImplementation,
  taskV2,
} from '@boxd/api';
import { Container, type ShimContext } from './container.js';
import type { ShimRegistry } from './records.js';

export interface TaskServiceHooks {
  /** Shutdown with no containers left: the daemon should exit. */
  onIdleShutdown(): void;
}

export class TaskService {
  readonly containers = new Map<string, Container>();
  private readonly creating = new Set<string>();

  constructor(
    private readonly ctx: ShimContext,
    private readonly registry: ShimRegistry,
    private readonly hooks: TaskServiceHooks,
  ) {}

  /** Serving or creating any container. */
  busy(): boolean {
    return this.containers.size > 0 || this.creating.size > 0;
  }

  /** Containers another shim process of this group left behind. */
  adopt(container: Container): void {
    this.containers.set(container.id, container);
  }

  private get(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw new NotFoundError('container not created');
    return c;
  }

  implementation(): ServiceImplementation<typeof taskV2.TaskService> {
    return {
      State: async (req) => this.get(req.id).state(req.execId),
      Create: async (req) => {
        if (this.containers.has(req.id) || this.creating.has(req.id)) throw new AlreadyExistsError(`container ${req.id}`);
        this.creating.add(req.id);
        let container: Container;
        try {
          container = await Container.create(req, this.ctx);
        } finally {
          this.creating.delete(req.id);
        }
        this.containers.set(req.id, container);
        this.registry.add(req.id, req.bundle);
        return { pid: container.init.pid };
      },
      Start: async (req) => ({ pid: await this.get(req.id).start(req.execId) }),
      Delete: async (req) => {
        const container = this.get(req.id);
        if (req.execId) return container.deleteExec(req.execId);
        const res = await container.delete();
        this.containers.delete(req.id);
        this.registry.remove(req.id);
        return res;
      },
      Pids: async (req) => this.get(req.id).pids(),
      Pause: async (req) => {
        await this.get(req.id).pause();
        return {};
      },
      Resume: async (req) => {
        await this.get(req.id).resume();
        return {};
      },
      Checkpoint: async (req) => {
        const options = req.options?.value?.length ? runcOptions.CheckpointOptions.decode(req.options.value) : undefined;
        await this.get(req.id).checkpoint(req.path, options);
        return {};
      },
      Kill: async (req) => {
        await this.get(req.id).kill(req.execId, req.signal, req.all);
        return {};
      },
      Exec: async (req) => {
        this.get(req.id).exec(req);
        return {};
      },
      ResizePty: async (req) => {
        this.get(req.id).resize(req.execId, req.width, req.height);
        return {};
      },
      CloseIO: async (req) => {
        this.get(req.id).closeIO(req.execId, req.stdin);
        return {};
      },
      Update: async (req) => {
        await this.get(req.id).update(req.resources?.value ?? new Uint8Array());
        return {};
      },
      Wait: async (req) => {
        const p = this.get(req.id).process(req.execId);
        const exit = await p.wait();
        return { exitStatus: exit.status, exitedAt: p.exitedAt() };
      },
      Stats: async (req) => ({ stats: this.get(req.id).stats() }),
      Connect: async (req) => ({ shimPid: process.pid, taskPid: this.containers.get(req.id)?.init.pid ?? 0, version: '' }),
      Shutdown: async () => {
        if (this.containers.size === 0) setImmediate(() => this.hooks.onIdleShutdown());
        return {};
      },
    };
  }
}
