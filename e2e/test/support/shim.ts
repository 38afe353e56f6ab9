import { constants, openSync, closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { run, runOk, type RunResult } from '@boxd/test-utils';

export const RUNC_SHIM = '/usr/bin/containerd-shim-runc-v2';

export interface ShimInvocation {
  namespace: string;
  id: string;
  bundle: string;
  /** What containerd passes as -address: its gRPC socket (used by the shim to name its own socket). */
  containerdAddress: string;
  /** containerd's ttrpc socket: where the shim publishes task events. */
  ttrpcAddress: string;
}

function shimArgs(shim: ShimInvocation, action: string, extra: string[] = []): string[] {
  return [
    '-namespace', shim.namespace,
    '-address', shim.containerdAddress,
    '-publish-binary', '/usr/bin/containerd',
    '-id', shim.id,
    ...extra,
    action,
  ];
}

function shimEnv(shim: ShimInvocation): NodeJS.ProcessEnv {
  return { ...process.env, TTRPC_ADDRESS: shim.ttrpcAddress, GOMAXPROCS: '2' };
}

/** Runs `<shim> ... start` the way containerd 1.6 does; returns the address it printed. */
export async function shimStart(shim: ShimInvocation): Promise<string> {
  const r = await runOk(RUNC_SHIM, shimArgs(shim, 'start'), { cwd: shim.bundle, env: shimEnv(shim), timeoutMs: 20_000 });
  // containerd reads stdout and stderr together and trims them.
  return (r.stdout + r.stderr).trim();
}

/** Runs `<shim> ... -bundle B delete` (containerd's cleanup); stdout is a raw DeleteResponse. */
export async function shimDelete(shim: ShimInvocation): Promise<RunResult> {
  return run(RUNC_SHIM, shimArgs(shim, 'delete', ['-bundle', shim.bundle]), {
    cwd: shim.bundle,
    env: shimEnv(shim),
    timeoutMs: 20_000,
  });
}

/**
 * The bundle's `log` FIFO, held open for reading as containerd does (O_RDWR so the shim's
 * O_WRONLY open never blocks and a closed writer never means EOF). The shim writes its logs here.
 */
export async function openShimLog(bundle: string): Promise<{ text(): string; close(): void }> {
  const path = join(bundle, 'log');
  await runOk('mkfifo', ['-m', '0700', path]);
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  const socket = new Socket({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  socket.on('error', () => {});
  return {
    text: () => Buffer.concat(chunks).toString('utf8'),
    close: () => {
      socket.destroy();
      try {
        closeSync(fd);
      } catch {
        // the socket already closed it
      }
    },
  };
}
