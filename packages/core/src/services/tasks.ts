/** containerd.services.tasks.v1.Tasks: tasks run through shims, looked up by namespace and container id. */
import { rm } from 'node:fs/promises';
import {
  containers,
  FailedPreconditionError,
  fieldsAdaptor,
  InvalidArgumentError,
  parseFilters,
  taskTypes,
  tasks,
  taskV2,
  timestampFromDate,
  type CallContext,
  type Init,
  type ServiceClient,
  type ServiceImplementation,
} from '@boxd/api';
import { forwardOptions, requireNamespace } from '../forward.js';
import type { ShimTask, TaskManager } from '../runtime/task-manager.js';
import type { Checkpoints } from '../runtime/checkpoints.js';

type Containers = ServiceClient<typeof containers.ContainersService>;

const STATUS_NAMES = ['unknown', 'created', 'running', 'stopped', 'paused', 'pausing'];

function processOf(id: string, execId: string, s: taskV2.StateResponse): Init<taskTypes.Process> {
  return {
    containerId: id,
    id: execId || id,
    pid: s.pid,
    status: s.status,
    stdin: s.stdin,
    stdout: s.stdout,
    stderr: s.stderr,
    terminal: s.terminal,
    exitStatus: s.exitStatus,
    exitedAt: s.exitedAt,
  };
}

export function tasksService(manager: TaskManager, containerStore: () => Containers, checkpoints: Checkpoints): ServiceImplementation<typeof tasks.TasksService> {
  const find = (ctx: CallContext, id: string): ShimTask => manager.get(requireNamespace(ctx), id);

  return {
    async Create(req, ctx) {
      const ns = requireNamespace(ctx);
      const { container } = await containerStore().Get({ id: req.containerId }, forwardOptions(ctx));
      if (!container?.spec?.value?.length) throw new FailedPreconditionError(`container ${req.containerId} has no spec`);
      const runtime = req.runtimePath || container.runtime?.name || '';
      if (!runtime) throw new InvalidArgumentError(`container ${req.containerId} has no runtime`);
      const checkpoint = req.checkpoint?.digest ? await checkpoints.restore(req.checkpoint, ctx) : '';
      const { pid } = await manager
        .create({
        ns,
        id: req.containerId,
        runtime,
        spec: container.spec.value,
        options: req.options?.type_url ? req.options : container.runtime?.options,
        request: { rootfs: req.rootfs, terminal: req.terminal, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, checkpoint },
        })
        .finally(() => checkpoint && rm(checkpoint, { recursive: true, force: true }));
      return { containerId: req.containerId, pid };
    },
    async Start(req, ctx) {
      return find(ctx, req.containerId).task.Start({ id: req.containerId, execId: req.execId });
    },
    async Delete(req, ctx) {
      const t = find(ctx, req.containerId);
      const res = await t.task.Delete({ id: req.containerId });
      await manager.finish(t);
      return { id: req.containerId, pid: res.pid, exitStatus: res.exitStatus, exitedAt: res.exitedAt };
    },
    async DeleteProcess(req, ctx) {
      const res = await find(ctx, req.containerId).task.Delete({ id: req.containerId, execId: req.execId });
      return { id: req.execId, pid: res.pid, exitStatus: res.exitStatus, exitedAt: res.exitedAt };
    },
    async Get(req, ctx) {
      const state = await find(ctx, req.containerId).task.State({ id: req.containerId, execId: req.execId });
      return { process: processOf(req.containerId, req.execId, state) };
    },
    async List(req, ctx) {
      const ns = requireNamespace(ctx);
      const filter = parseFilters(req.filter ? [req.filter] : []);
      // Shims are asked in parallel; one that does not answer is still a task, listed UNKNOWN.
      const processes = await Promise.all(
        manager.list(ns).map(async (t): Promise<Init<taskTypes.Process>> => {
          const state = await t.task.State({ id: t.id }, { timeoutMs: 5000 }).catch(() => undefined);
          return state ? processOf(t.id, '', state) : { containerId: t.id, id: t.id, status: taskTypes.Status.UNKNOWN };
        }),
      );
      const out = processes.filter((p) => filter.match(fieldsAdaptor({ id: p.id, container_id: p.containerId, pid: String(p.pid ?? 0), status: STATUS_NAMES[p.status ?? 0] })));
      return { tasks: out };
    },
    async Kill(req, ctx) {
      await find(ctx, req.containerId).task.Kill({ id: req.containerId, execId: req.execId, signal: req.signal, all: req.all });
      return {};
    },
    async Exec(req, ctx) {
      if (!req.execId) throw new InvalidArgumentError('exec id must not be empty');
      await find(ctx, req.containerId).task.Exec({
        id: req.containerId,
        execId: req.execId,
        terminal: req.terminal,
        stdin: req.stdin,
        stdout: req.stdout,
        stderr: req.stderr,
        spec: req.spec,
      });
      return {};
    },
    async ResizePty(req, ctx) {
      await find(ctx, req.containerId).task.ResizePty({ id: req.containerId, execId: req.execId, width: req.width, height: req.height });
      return {};
    },
    async CloseIO(req, ctx) {
      await find(ctx, req.containerId).task.CloseIO({ id: req.containerId, execId: req.execId, stdin: req.stdin });
      return {};
    },
    async Pause(req, ctx) {
      await find(ctx, req.containerId).task.Pause({ id: req.containerId });
      return {};
    },
    async Resume(req, ctx) {
      await find(ctx, req.containerId).task.Resume({ id: req.containerId });
      return {};
    },
    async ListPids(req, ctx) {
      return find(ctx, req.containerId).task.Pids({ id: req.containerId });
    },
    async Checkpoint(req, ctx) {
      const t = find(ctx, req.containerId);
      return { descriptors: await checkpoints.create(t, req.options, ctx) };
    },
    async Update(req, ctx) {
      await find(ctx, req.containerId).task.Update({ id: req.containerId, resources: req.resources, annotations: req.annotations });
      return {};
    },
    async Metrics(req, ctx) {
      const ns = requireNamespace(ctx);
      const filter = parseFilters(req.filters);
      const selected = manager.list(ns).filter((t) => filter.match(fieldsAdaptor({ id: t.id })));
      const stats = await Promise.all(selected.map((t) => t.task.Stats({ id: t.id }).catch(() => undefined)));
      const metrics = selected.flatMap((t, i) => (stats[i]?.stats ? [{ timestamp: timestampFromDate(), id: t.id, data: stats[i]!.stats }] : []));
      return { metrics };
    },
    async Wait(req, ctx) {
      return find(ctx, req.containerId).task.Wait({ id: req.containerId, execId: req.execId }, { signal: ctx.signal });
    },
  };
}
