/**
 * The shim daemon: a child subreaper serving `containerd.task.v2.Task` over ttrpc on the
 * listener `start` handed it (fd 3) or on `-socket`. It adopts the containers a previous
 * shim of its group left behind, and exits once Shutdown finds no container left.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destination as pinoDestination, pino, type Logger } from 'pino';
import { boxdShim, collectingWhenIdle, IdleCollector, taskV2 } from '@boxd/api';
import { TtrpcServer } from '@boxd/ttrpc';
import { Container, type ShimContext } from './container.js';
import { EventPublisher } from './events.js';
import { groupService, joiningCreate, type GroupScope } from './group-service.js';
import type { ShimFlags } from './flags.js';
import { LivenessWatcher } from './liveness.js';
import { OomEvents } from './oom-events.js';
import { reapedLauncher } from './launch.js';
import { Reaper } from './reaper.js';
import { loadContainer, ShimRegistry } from './records.js';
import { TaskService } from './service.js';
import { SOCKET_ENV, type ClaimedListener } from './start.js';

const INHERITED_LISTENER_FD = 3;
export const IDLE_EXIT_ENV = 'BOXD_SHIM_IDLE_EXIT_MS';
/**
 * An idle shim stays this long for the group's next task: the first container after it
 * has gone pays a Node.js start (~0.2-0.3 s), a task that finds it pays nothing. As the
 * core's on-demand plugins (idle_exit 60 s), it trades an idle process for that start.
 */
export const DEFAULT_IDLE_EXIT_MS = 30_000;

/** How long an idle shim waits after Shutdown before exiting (0: at once, as upstream). */
export function idleExitDelay(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[IDLE_EXIT_ENV];
  if (raw === undefined || raw === '') return DEFAULT_IDLE_EXIT_MS;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`${IDLE_EXIT_ENV}=${raw}: expected milliseconds >= 0`);
  return ms;
}
const EXIT_FLUSH_TIMEOUT_MS = 5_000;
/** A task joined through Group.Join gets this long for its Create before an idle exit may go ahead. */
const JOIN_GRACE_MS = 10_000;

function createLogger(flags: ShimFlags): Logger {
  // fd 2 is containerd's `log` FIFO; it may go away (bundle removed), which must not kill us.
  const destination = pinoDestination({ fd: 2, sync: true });
  destination.on('error', () => {});
  return pino({ level: flags.debug ? 'debug' : 'info', base: { runtime: 'io.containerd.boxd.v2', pid: process.pid } }, destination);
}

function recover(service: TaskService, registry: ShimRegistry, ctx: ShimContext): void {
  for (const { id, bundle } of registry.entries()) {
    const record = loadContainer(bundle);
    if (!record || record.id !== id) {
      registry.remove(id);
      continue;
    }
    service.adopt(Container.recover(record, ctx));
    ctx.logger.info({ id, pid: record.init.pid }, 'adopted container from a previous shim');
  }
}

function listenInherited(server: TtrpcServer): Promise<Server> {
  return new Promise((resolve, reject) => {
    const listener = createServer((socket) => server.serve(socket));
    listener.once('error', reject);
    listener.listen({ fd: INHERITED_LISTENER_FD }, () => resolve(listener));
  });
}

/** Serves on the listener a daemon claimed itself, with the connections that came first. */
function serveClaimed(claimed: ClaimedListener, server: TtrpcServer): Server {
  claimed.server.removeAllListeners('connection');
  claimed.server.on('connection', (socket) => server.serve(socket));
  for (const socket of claimed.early.splice(0)) server.serve(socket);
  return claimed.server;
}

export async function runDaemon(flags: ShimFlags, claimed?: ClaimedListener): Promise<void> {
  const logger = createLogger(flags);
  const socketPath = flags.socket || process.env[SOCKET_ENV];
  if (!socketPath) throw new Error(`daemon needs -socket or ${SOCKET_ENV}`);
  process.chdir('/');

  const reaper = new Reaper();
  reaper.start();
  const tempDir = mkdtempSync(join(tmpdir(), 'boxd-shim-'));
  const events = new EventPublisher(process.env.TTRPC_ADDRESS || `${flags.address}.ttrpc`, flags.namespace, logger);
  const ctx: ShimContext = { namespace: flags.namespace, reaper, launch: reapedLauncher(reaper), liveness: new LivenessWatcher(), oom: new OomEvents(), events, logger, tempDir };
  const registry = ShimRegistry.forSocket(socketPath);

  let listener: Server | undefined;
  let exiting = false;
  let lastJoinAt = 0;
  const ttrpc = new TtrpcServer({ logger });
  const exit = async (code: number, removeState: boolean): Promise<never> => {
    exiting = true;
    // Unreachable first, so a concurrent `start` spawns a new shim rather than picking us.
    listener?.close();
    void ttrpc.close({ timeoutMs: 500 });
    if (removeState) {
      rmSync(socketPath, { force: true });
      registry.destroy();
    }
    await Promise.race([events.flush(), new Promise((r) => setTimeout(r, EXIT_FLUSH_TIMEOUT_MS))]);
    rmSync(tempDir, { recursive: true, force: true });
    process.exit(code);
  };

  const idleExitMs = idleExitDelay();
  let idleTimer: NodeJS.Timeout | undefined;
  const onIdleShutdown = (): void => {
    if (service.busy()) return;
    const joinWait = lastJoinAt + JOIN_GRACE_MS - Date.now();
    if (idleExitMs <= 0 && joinWait <= 0) return void exit(0, true);
    // Lingering lets the next task of the group skip a Node.js start; exit only if still idle.
    idleTimer ??= setTimeout(() => {
      idleTimer = undefined;
      onIdleShutdownAfterWait();
    }, Math.max(idleExitMs, joinWait));
  };
  const onIdleShutdownAfterWait = (): void => {
    if (service.busy()) return;
    if (lastJoinAt + JOIN_GRACE_MS > Date.now()) return onIdleShutdown();
    void exit(0, true);
  };
  const service = new TaskService(ctx, registry, { onIdleShutdown });
  recover(service, registry, ctx);
  const idle = new IdleCollector();
  const group: GroupScope = {
    address: flags.address,
    namespace: flags.namespace,
    socketPath,
    accepting: () => !exiting,
    joined: () => {
      lastJoinAt = Date.now();
    },
  };
  const plain = service.implementation();
  const tasks = { ...plain, Create: joiningCreate(group, plain.Create!) };
  ttrpc.addService(taskV2.TaskService, collectingWhenIdle(taskV2.TaskService, tasks, idle));
  ttrpc.addService(boxdShim.GroupService, groupService(group));
  if (claimed) listener = serveClaimed(claimed, ttrpc);
  else if (flags.socket) await ttrpc.listen(flags.socket);
  else listener = await listenInherited(ttrpc);

  registry.writePid(process.pid);
  // Containers keep running; a later `start` finds the socket dead and a new shim adopts them.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void exit(0, service.containers.size === 0));
  logger.info({ socket: socketPath, id: flags.id, namespace: flags.namespace, adopted: service.containers.size }, 'shim serving');
  // Starting up is a burst of work too: what loading and setup left is collected.
  idle.touch();
}
