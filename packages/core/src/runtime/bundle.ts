/**
 * Task bundles on disk, laid out as containerd's runtime v2 does so either
 * shim (ours or upstream's) finds what it expects:
 *   <state>/io.containerd.runtime.v2.task/<ns>/<id>/{config.json, rootfs/, work, log, shim-binary-path}
 */
import { constants, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { mkfifo, unmountAll } from './native.js';

export const TASK_DIR = 'io.containerd.runtime.v2.task';

export interface BundlePaths {
  bundle: string;
  work: string;
}

export function bundlePaths(root: string, state: string, ns: string, id: string): BundlePaths {
  return { bundle: join(state, TASK_DIR, ns, id), work: join(root, TASK_DIR, ns, id) };
}

/**
 * A handful of small files and directories, made with synchronous calls: each takes
 * microseconds, where a round through libuv's thread pool costs a hundred or more
 * (and three rounds were ~0.9 ms of every task's Create).
 */
export async function createBundle(paths: BundlePaths, spec: Uint8Array, shimBinary: string): Promise<void> {
  mkdirSync(join(paths.bundle, '..'), { recursive: true, mode: 0o711 });
  // The bundle directory is the claim: EEXIST here means the task exists.
  mkdirSync(paths.bundle, { mode: 0o700 });
  mkfifo(join(paths.bundle, 'log'), 0o700);
  mkdirSync(paths.work, { recursive: true, mode: 0o711 });
  writeFileSync(join(paths.bundle, 'config.json'), spec);
  mkdirSync(join(paths.bundle, 'rootfs'), { mode: 0o711 });
  symlinkSync(paths.work, join(paths.bundle, 'work'));
  writeFileSync(join(paths.bundle, 'shim-binary-path'), shimBinary, { mode: 0o600 });
}

/**
 * The shim writes its own log to the `log` FIFO; it would block opening it
 * without a reader, so the core holds the read side and relays the lines.
 */
export function followShimLog(bundle: string, logger: Logger): Socket | undefined {
  try {
    // O_RDWR: opening never blocks and the FIFO never reports EOF while we hold it.
    const fd = openSync(join(bundle, 'log'), constants.O_RDWR | constants.O_NONBLOCK);
    const stream = new Socket({ fd, readable: true, writable: false });
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n')) if (line.trim()) logger.debug({ shim: line }, 'shim log');
    });
    stream.on('error', () => undefined);
    return stream;
  } catch {
    return undefined;
  }
}

export async function readBundleFile(bundle: string, name: string): Promise<string | undefined> {
  return readFile(join(bundle, name), 'utf8').then((s) => s.trim(), () => undefined);
}

/** Unmount the rootfs (the shim normally has), then remove bundle and work dir. */
export async function removeBundle(paths: BundlePaths): Promise<void> {
  try {
    unmountAll(join(paths.bundle, 'rootfs'));
  } catch {
    // Still mounted and busy: removing the files below fails and says so.
  }
  const hidden = join(paths.bundle, '..', `.${paths.bundle.split('/').pop()}`);
  await rename(paths.bundle, hidden).catch(() => undefined);
  await rm(hidden, { recursive: true, force: true }).catch(() => undefined);
  await rm(paths.bundle, { recursive: true, force: true }).catch(() => undefined);
  await rm(paths.work, { recursive: true, force: true });
}

/** Every entry under <state>/<task dir>/<namespace>/. */
async function bundleEntries(state: string): Promise<Array<{ ns: string; name: string; path: string }>> {
  const base = join(state, TASK_DIR);
  const out: Array<{ ns: string; name: string; path: string }> = [];
  for (const ns of await readdir(base).catch(() => [] as string[])) {
    for (const name of await readdir(join(base, ns)).catch(() => [] as string[])) out.push({ ns, name, path: join(base, ns, name) });
  }
  return out;
}

/** Removes what a removal cut short left behind (bundles renamed to `.<id>` first). */
export async function removeHiddenLeftovers(state: string): Promise<void> {
  for (const { name, path } of await bundleEntries(state)) {
    if (name.startsWith('.')) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Every bundle left in the state dir: [namespace, id] pairs. */
export async function listBundles(state: string): Promise<Array<{ ns: string; id: string }>> {
  return (await bundleEntries(state)).filter((e) => !e.name.startsWith('.')).map((e) => ({ ns: e.ns, id: e.name }));
}
