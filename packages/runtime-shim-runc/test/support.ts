/** Shared helpers: OCI bundles, running the shim binary as containerd does, FIFOs. */
import { constants, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOk, unpackTestImage, type RunResult, type TestImage } from '@boxd/test-utils';

export const SHIM_BIN = join(dirname(fileURLToPath(import.meta.url)), '../bin/containerd-shim-boxd-v2');

export interface BundleOptions {
  terminal?: boolean;
  annotations?: Record<string, string>;
  /** Leave rootfs/ empty (the test passes rootfs mounts in Create instead). */
  emptyRootfs?: boolean;
  /** linux.resources.memory.limit (and swap, so the limit cannot be swapped around). */
  memoryLimit?: number;
}

interface RuntimeSpec {
  process: { terminal: boolean; args: string[]; oomScoreAdj?: number };
  hostname?: string;
  linux?: { resources?: Record<string, unknown> };
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * An OCI bundle: rootfs from the test image, config.json from `runc spec`. oomScoreAdj
 * stays unset (no CAP_SYS_RESOURCE here to lower it). `log` is a plain file, so the
 * shim's log can be read after the fact.
 */
export async function makeBundle(image: TestImage, dir: string, args: string[], opts: BundleOptions = {}): Promise<string> {
  await unpackTestImage(image, dir);
  await rm(join(dir, 'config.json'));
  if (opts.emptyRootfs) {
    await rm(join(dir, 'rootfs'), { recursive: true });
    await runOk('mkdir', [join(dir, 'rootfs')]);
  }
  await runOk('runc', ['spec', '--bundle', dir]);
  const specPath = join(dir, 'config.json');
  const spec = JSON.parse(await readFile(specPath, 'utf8')) as RuntimeSpec;
  spec.process.terminal = opts.terminal ?? false;
  spec.process.args = args;
  delete spec.process.oomScoreAdj;
  spec.hostname = 'shimtest';
  if (opts.annotations) spec.annotations = opts.annotations;
  if (opts.memoryLimit) {
    spec.linux ??= {};
    spec.linux.resources = { ...spec.linux.resources, memory: { limit: opts.memoryLimit, swap: opts.memoryLimit } };
  }
  await writeFile(specPath, JSON.stringify(spec, null, 2));
  await writeFile(join(dir, 'log'), '');
  return dir;
}

export interface ShimEnv {
  namespace: string;
  /** What containerd passes as -address. */
  address: string;
  /** Where events go (containerd's ttrpc socket). */
  ttrpcAddress: string;
  socketDir: string;
  stateDir: string;
  grouping?: string;
}

export function shimEnv(env: ShimEnv): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TTRPC_ADDRESS: env.ttrpcAddress,
    BOXD_SHIM_SOCKET_DIR: env.socketDir,
    BOXD_SHIM_STATE_DIR: env.stateDir,
    // The exit paths are what these tests watch: a short linger.
    BOXD_SHIM_IDLE_EXIT_MS: '2000',
    ...(env.grouping ? { BOXD_SHIM_GROUPING: env.grouping } : {}),
  };
}

function args(env: ShimEnv, id: string, action: string, extra: string[] = []): string[] {
  return ['-namespace', env.namespace, '-address', env.address, '-publish-binary', '/usr/bin/containerd', '-id', id, ...extra, action];
}

/** `start` as containerd 1.6 runs it; returns the printed address (stdout+stderr, trimmed). */
export async function shimStart(env: ShimEnv, id: string, bundle: string): Promise<string> {
  const r = await runOk(SHIM_BIN, args(env, id, 'start'), { cwd: bundle, env: shimEnv(env), timeoutMs: 20_000 });
  return (r.stdout + r.stderr).trim();
}

export function shimDelete(env: ShimEnv, id: string, bundle: string): Promise<RunResult> {
  return run(SHIM_BIN, args(env, id, 'delete', ['-bundle', bundle]), { cwd: bundle, env: shimEnv(env), timeoutMs: 20_000 });
}

/** A client-side FIFO held open for reading (O_RDWR, as containerd's client does), collecting output. */
export async function readFifo(path: string): Promise<{ text(): string; close(): void }> {
  await runOk('mkfifo', [path]);
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  const socket = new Socket({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  socket.on('error', () => {});
  return { text: () => Buffer.concat(chunks).toString('utf8'), close: () => socket.destroy() };
}

/** A client-side stdin FIFO; the writer opens once the shim holds the read side. */
export async function writeFifo(path: string): Promise<{ open(): Socket }> {
  await runOk('mkfifo', [path]);
  return {
    open: () => new Socket({ fd: openSync(path, constants.O_WRONLY | constants.O_NONBLOCK), readable: false, writable: true }),
  };
}
