/**
 * Clients for the namespace-less backends GC cleans: the content store and
 * the snapshotters, over ttrpc (default) or gRPC.
 */
import { content, snapshots, type ServiceClient, type ServiceDefinition } from '@boxd/api';
import { TtrpcClient, createTtrpcClient } from '@boxd/ttrpc';

export type Transport = 'ttrpc' | 'grpc';

export interface BackendAddress {
  address: string;
  transport: Transport;
}

export interface Backend<S extends ServiceDefinition> {
  get(): Promise<ServiceClient<S>>;
  close(): void;
}

export type ContentBackend = Backend<typeof content.ContentService>;
export type SnapshotsBackend = Backend<typeof snapshots.SnapshotsService>;

export function connectBackend<S extends ServiceDefinition>(def: S, target: BackendAddress): Backend<S> {
  if (target.transport === 'grpc') {
    // gRPC (HTTP/2) is loaded only for the backends configured to use it.
    const client = import('@boxd/grpc').then(({ createGrpcClient }) => createGrpcClient(def, target.address));
    client.catch(() => undefined);
    return { get: () => client, close: () => void client.then((c) => c.close(), () => undefined) };
  }
  return ttrpcBackend(def, target.address);
}

/** One ttrpc connection, dialled on first use and again after it drops. */
function ttrpcBackend<S extends ServiceDefinition>(def: S, address: string): Backend<S> {
  let connection: Promise<{ raw: TtrpcClient; typed: ServiceClient<S> }> | undefined;
  let closed = false;
  return {
    async get() {
      const current = connection ? await connection.catch(() => undefined) : undefined;
      if (!current || current.raw.closed) {
        if (closed) throw new Error('backend client closed');
        connection = TtrpcClient.connect(address).then((raw) => ({ raw, typed: createTtrpcClient(def, raw) }));
      }
      return (await connection!).typed;
    },
    close() {
      closed = true;
      void connection?.then(({ raw }) => raw.close()).catch(() => undefined);
    },
  };
}

export interface Backends {
  content?: ContentBackend;
  snapshotters: Map<string, SnapshotsBackend>;
  close(): void;
}

export function connectBackends(contentTarget: BackendAddress | undefined, snapshotterTargets: Record<string, BackendAddress>): Backends {
  const contentBackend = contentTarget ? connectBackend(content.ContentService, contentTarget) : undefined;
  const snapshotters = new Map(Object.entries(snapshotterTargets).map(([name, t]) => [name, connectBackend(snapshots.SnapshotsService, t)]));
  return {
    content: contentBackend,
    snapshotters,
    close() {
      contentBackend?.close();
      for (const s of snapshotters.values()) s.close();
    },
  };
}
