/** Test harness: the metadata plugin in-process on a real gRPC socket, and typed clients. */
import { mkdtemp, rm } from 'node:fs/promises';
import pino from 'pino';
import { expect } from 'vitest';
import { boxdMetadata, containers, errorCode, images, leases, namespaces, type CallOptions, type Code } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { startPlugin, type PluginConfig, type RunningPlugin } from '@boxd/plugin-kit';
import { metadataPlugin, type MetadataInstance } from '../src/index.js';

export interface Harness {
  dir: string;
  plugin: RunningPlugin;
  instance: MetadataInstance;
  clients: ReturnType<typeof metadataClients>;
  stop(): Promise<void>;
}

export function metadataClients(address: string) {
  return {
    namespaces: createGrpcClient(namespaces.NamespacesService, address),
    images: createGrpcClient(images.ImagesService, address),
    containers: createGrpcClient(containers.ContainersService, address),
    leases: createGrpcClient(leases.LeasesService, address),
    content: createGrpcClient(boxdMetadata.ContentIndexService, address),
    snapshots: createGrpcClient(boxdMetadata.SnapshotIndexService, address),
    gc: createGrpcClient(boxdMetadata.GCService, address),
  };
}

/** The plugin on a fresh directory, or on `reuse` (kept on stop, so a restart finds its store). */
export async function startMetadata(config: PluginConfig = {}, reuse?: string): Promise<Harness> {
  const dir = reuse ?? (await mkdtemp('/tmp/bx-md-'));
  const plugin = await startPlugin(metadataPlugin, {
    grpcAddress: `${dir}/md.sock`,
    root: `${dir}/root`,
    // Scheduled collections would race the assertions; tests collect explicitly.
    config: { gc_delay_ms: 3_600_000, gc_startup_delay_ms: -1, ...config },
    logger: pino({ level: 'silent' }),
  });
  const clients = metadataClients(`${dir}/md.sock`);
  return {
    dir,
    plugin,
    instance: plugin.instance as MetadataInstance,
    clients,
    async stop() {
      for (const c of Object.values(clients)) c.close();
      await plugin.stop();
      if (!reuse) await rm(dir, { recursive: true, force: true });
    },
  };
}

export const inNs = (namespace: string, lease?: string): CallOptions => ({
  namespace,
  metadata: lease ? { 'containerd-lease': lease } : undefined,
});

/** Awaits a rejection with this status code (and message part, if given). */
export async function expectCode(promise: Promise<unknown>, code: Code, message?: string | RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail').toBeInstanceOf(Error);
  expect(errorCode(err)).toBe(code);
  if (message !== undefined) expect((err as Error).message).toMatch(message);
}

export const sha = (hex: string) => `sha256:${hex.padStart(64, '0')}`;

/** Drains a server stream of batches into one list. */
export async function collect<T, U>(stream: AsyncIterable<T>, pick: (batch: T) => U[]): Promise<U[]> {
  const out: U[] = [];
  for await (const batch of stream) out.push(...pick(batch));
  return out;
}
