/**
 * `start`: find or launch the shim daemon for this task's group and print its address.
 * This is on the path of every container start, so it loads only node built-ins.
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, constants, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { daemonArgs, type ShimFlags } from './flags.js';
import { groupingPolicy, groupKey, shimSocketPath } from './grouping.js';

export const SOCKET_ENV = 'BOXD_SHIM_SOCKET';
/** Set by the shell entry when it launches a daemon itself: the group socket to claim. */
export const CLAIM_ENV = 'BOXD_SHIM_CLAIM';
/** The pid of whoever ran `start` (containerd, boxd): the daemon's OOM score goes just above its. */
export const PARENT_ENV = 'BOXD_SHIM_PARENT_PID';
export const SHIM_NAME = 'containerd-shim-boxd-v2';

/**
 * The daemon is a long-lived, I/O-bound process whose memory is what a host pays for
 * its containers: a small young generation, one V8 helper thread and no optimizing
 * compiler take its PSS from ~33 MB to ~23 MB.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=1', '--lite-mode'];

export function annotationsOf(bundle: string): Record<string, string> {
  try {
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { annotations?: Record<string, string> };
    return spec.annotations ?? {};
  } catch {
    return {};
  }
}

// Kept here rather than taken from @boxd/api: the start path loads as little as it can.
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

/** Written the way containerd reads it: the address, no newline, replaced atomically. */
export function writeAddressFile(bundle: string, address: string): void {
  const tmp = join(bundle, '.address');
  writeFileSync(tmp, address);
  renameSync(tmp, join(bundle, 'address'));
}

type Claim = { server: Server } | 'existing';

/**
 * Binds a fresh socket under a temporary name and hard-links it into place, so the final
 * path only ever names a socket that is already listening; concurrent starts of one group
 * therefore agree on a single daemon.
 */
async function claimSocket(path: string): Promise<Claim> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o711 });
  for (let attempt = 0; attempt < 20; attempt++) {
    if (await answers(path)) return 'existing';
    const tmp = `${path}.${process.pid}`;
    rmSync(tmp, { force: true });
    const server = await listen(tmp);
    try {
      chmodSync(tmp, 0o600);
      linkSync(tmp, path);
      // The group's name is in place; the socket stays bound without its temporary one.
      rmSync(tmp, { force: true });
      return { server };
    } catch (err) {
      server.close();
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // Someone holds the name: live (use it) or left by a dead shim (clear it and retry).
    if (await answers(path)) return 'existing';
    try {
      unlinkSync(path);
    } catch {
      // another start removed it first
    }
  }
  throw new Error(`could not claim shim socket ${path}`);
}

function listenerFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('shim socket has no file descriptor');
  return fd;
}

/** The bundle's `log` FIFO (containerd holds its read side), else /dev/null. */
function openLog(bundle: string): number {
  try {
    return openSync(join(bundle, 'log'), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return openSync('/dev/null', 'w');
  }
}

function raiseOomScore(pid: number, parentPid = process.ppid): void {
  try {
    const parent = Number(readFileSync(`/proc/${parentPid}/oom_score_adj`, 'utf8').trim());
    // Only ever raised: lowering it needs CAP_SYS_RESOURCE.
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(Math.min(1000, parent + 1)));
  } catch {
    // best effort, as upstream
  }
}

function spawnDaemon(flags: ShimFlags, bundle: string, socketPath: string, server: Server): number {
  const log = openLog(bundle);
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...process.execArgv, process.argv[1]!, ...daemonArgs(flags)], {
    // What ps and process finders see: the shim's name, as with any containerd shim.
    argv0: SHIM_NAME,
    cwd: bundle,
    detached: true,
    stdio: ['ignore', 'ignore', log, listenerFd(server)],
    env: { ...process.env, [SOCKET_ENV]: socketPath },
  });
  closeSync(log);
  child.unref();
  return child.pid!;
}

export async function startCommand(flags: ShimFlags): Promise<string> {
  if (!flags.id) throw new Error('start: -id is required');
  if (!flags.namespace) throw new Error('start: -namespace is required');
  const bundle = process.cwd();
  const policy = groupingPolicy();
  const annotations = policy === 'per-sandbox' ? annotationsOf(bundle) : {};
  const socketPath = shimSocketPath(flags.address, flags.namespace, groupKey(policy, flags.id, annotations));
  const address = `unix://${socketPath}`;
  const claim = await claimSocket(socketPath);
  if (claim !== 'existing') {
    const pid = spawnDaemon(flags, bundle, socketPath, claim.server);
    raiseOomScore(pid);
    // The daemon has its own copy of the listener; ours is closed.
    await new Promise<void>((resolve) => claim.server.close(() => resolve()));
  }
  writeAddressFile(bundle, address);
  return address;
}

export interface ClaimedListener {
  server: Server;
  /** Connections accepted before the daemon could serve them (the caller dials at once). */
  early: Socket[];
}

/**
 * A daemon launched by the shell entry for a cold `start` claims its group's socket itself,
 * before loading anything else, and prints the address for the shell on its stdout: the
 * shell answers containerd then, while this process goes on loading. One Node.js start on
 * that path instead of two (`start`, then the daemon it spawns). Undefined: another daemon
 * holds the socket, and this one has nothing to do.
 */
export async function claimAsDaemon(path: string): Promise<ClaimedListener | undefined> {
  const claim = await claimSocket(path);
  const early: Socket[] = [];
  if (claim !== 'existing') {
    claim.server.on('connection', (socket: Socket) => early.push(socket));
    raiseOomScore(process.pid, Number(process.env[PARENT_ENV]) || process.ppid);
    process.env[SOCKET_ENV] = path;
  }
  writeSync(1, `unix://${path}\n`);
  // Nothing else goes to the shell: stdout becomes /dev/null (it takes the freed fd 1).
  closeSync(1);
  openSync('/dev/null', 'w');
  return claim === 'existing' ? undefined : { server: claim.server, early };
}
