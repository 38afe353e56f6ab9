/**
 * Real backends for GC tests: the content store plugin as a child process,
 * and a small directory-backed Snapshots server on its own socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  content,
  snapshots,
  socketAnswers,
  type CallOptions,
  type ServiceImplementation,
} from '@boxd/api';
import { GrpcServer, createGrpcClient } from '@boxd/grpc';

const require = createRequire(import.meta.url);

export interface ContentStoreProcess extends PluginProcess {
  client: ReturnType<typeof createGrpcClient<typeof content.ContentService>>;
  stop(): Promise<void>;
}

/** packages/content-store/dist/bin.js, serving gRPC (and ttrpc on `ttrpcAddress`). */
export async function startContentStore(dir: string, name = 'cs'): Promise<ContentStoreProcess> {
  const plugin = await startPluginBin('@boxd/content-store', dir, name);
  const client = createGrpcClient(content.ContentService, plugin.address);
  return {
    ...plugin,
    client,
    async stop() {
      client.close();
      await plugin.stop();
    },
  };
}

export interface PluginProcess {
  address: string;
  ttrpcAddress: string;
  root: string;
  stop(): Promise<void>;
}

/** A boxd plugin's bin serving both gRPC and ttrpc. */
export async function startPluginBin(pkg: string, dir: string, name: string): Promise<PluginProcess> {
  const bin = join(dirname(require.resolve(pkg)), 'bin.js');
  const address = join(dir, `${name}.sock`);
  const ttrpcAddress = join(dir, `${name}.ttrpc`);
  const root = join(dir, `${name}-root`);
  const args = [bin, '--grpc-address', address, '--address', ttrpcAddress, '--root', root, '--log-level', 'warn'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForSocket(address, child);
  await waitForSocket(ttrpcAddress, child);
  return { address, ttrpcAddress, root, stop: () => stopChild(child) };
}

/** Until a process listens on the socket at `path`: the file appears at bind, a moment before listen. */
export async function waitForSocket(path: string, child?: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path) || !(await socketAnswers(path))) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before ${path} was served`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}`);
    await sleep(20);
  }
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

export const digestOf = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Writes and commits one blob in the content store under `ref`. */
export async function writeBackendBlob(client: ContentStoreProcess['client'], ref: string, data: Uint8Array): Promise<string> {
  const expected = digestOf(data);
  const call = client.Write();
  await call.send({ action: 2, ref, total: data.length, expected, offset: 0, data });
  await call.end();
  try {
    for await (const _ of call) void _;
  } catch (err) {
    if ((err as { code?: number }).code !== 6) throw err;
  }
  return expected;
}

interface Snap {
  parent: string;
  kind: snapshots.Kind;
  labels: Record<string, string>;
}

export interface SnapshotServer {
  address: string;
  root: string;
  snaps: Map<string, Snap>;
  dirOf(key: string): string;
  stop(): Promise<void>;
}

/** A namespace-less snapshotter keeping one directory per snapshot under `root`. */
export async function startSnapshotServer(dir: string, name = 'snap', removeDelayMs = 0): Promise<SnapshotServer> {
  const root = join(dir, `${name}-root`);
  await mkdir(root, { recursive: true });
  const snaps = new Map<string, Snap>();
  const dirOf = (key: string) => join(root, encodeURIComponent(key));
  const info = (key: string, s: Snap) => ({ name: key, parent: s.parent, kind: s.kind, labels: s.labels });
  const create = async (key: string, parent: string, kind: snapshots.Kind, labels: Record<string, string>) => {
    if (snaps.has(key)) throw new AlreadyExistsError(`snapshot ${key}`);
    if (parent) {
      const p = snaps.get(parent);
      if (!p) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
      if (p.kind !== 3) throw new InvalidArgumentError('parent is not committed');
    }
    snaps.set(key, { parent, kind, labels });
    await mkdir(dirOf(key));
    return { mounts: [{ type: 'bind', source: dirOf(key), target: '', options: ['rw'] }] };
  };
  const impl: ServiceImplementation<typeof snapshots.SnapshotsService> = {
    Prepare: (req) => create(req.key, req.parent, 2, req.labels),
    View: (req) => create(req.key, req.parent, 1, req.labels),
    async Mounts(req) {
      if (!snaps.has(req.key)) throw new NotFoundError(`snapshot ${req.key}`);
      return { mounts: [{ type: 'bind', source: dirOf(req.key), options: ['rw'] }] };
    },
    async Commit(req) {
      const active = snaps.get(req.key);
      if (!active) throw new NotFoundError(`snapshot ${req.key}`);
      if (active.kind !== 2) throw new FailedPreconditionError(`snapshot ${req.key} is not active`);
      if (snaps.has(req.name)) throw new AlreadyExistsError(`snapshot ${req.name}`);
      snaps.delete(req.key);
      snaps.set(req.name, { ...active, kind: 3, labels: req.labels });
      await mkdir(dirOf(req.name));
      await rm(dirOf(req.key), { recursive: true });
      return {};
    },
    async Remove(req) {
      // Lets a test catch a collection in the middle of its backend sweep.
      if (removeDelayMs) await sleep(removeDelayMs);
      if (!snaps.has(req.key)) throw new NotFoundError(`snapshot ${req.key}`);
      for (const s of snaps.values()) if (s.parent === req.key) throw new FailedPreconditionError('cannot remove snapshot with child');
      snaps.delete(req.key);
      await rm(dirOf(req.key), { recursive: true });
      return {};
    },
    async Stat(req) {
      const s = snaps.get(req.key);
      if (!s) throw new NotFoundError(`snapshot ${req.key}`);
      return { info: info(req.key, s) };
    },
    async Update(req) {
      const s = snaps.get(req.info?.name ?? '');
      if (!s) throw new NotFoundError('snapshot');
      s.labels = req.info?.labels ?? {};
      return { info: info(req.info!.name, s) };
    },
    async *List() {
      const all = [...snaps].map(([k, s]) => info(k, s));
      for (let i = 0; i < all.length; i += 100) yield { info: all.slice(i, i + 100) };
    },
    async Usage() {
      return { size: 0, inodes: 0 };
    },
    async Cleanup() {
      return {};
    },
  };
  const server = new GrpcServer().addService(snapshots.SnapshotsService, impl);
  const address = join(dir, `${name}.sock`);
  await server.listen(address);
  return { address, root, snaps, dirOf, stop: () => server.close() };
}

export type { CallOptions };
