/**
 * The diff plugin is a client of a Content service on a socket (ours or
 * upstream containerd's), over ttrpc or gRPC.
 */
import { content, UnavailableError, type CallOptions, type ServiceClient } from '@boxd/api';
import { TtrpcClient, createTtrpcClient } from '@boxd/ttrpc';

export type ContentClient = ServiceClient<typeof content.ContentService>;

export interface ContentStore {
  /** A client on a live connection (ttrpc connections are re-dialled after they drop). */
  client(): Promise<ContentClient>;
  close(): void;
}

export function connectContentStore(address: string | undefined, transport: 'ttrpc' | 'grpc'): ContentStore {
  if (!address) {
    const missing = () => Promise.reject(new UnavailableError('diff: no content store configured (content_address)'));
    return { client: missing, close: () => undefined };
  }
  if (transport === 'grpc') {
    // gRPC (HTTP/2) is loaded only when the content store speaks it.
    const client = import('@boxd/grpc').then(({ createGrpcClient }) => createGrpcClient(content.ContentService, address));
    return { client: () => client, close: () => void client.then((c) => c.close()) };
  }
  let connection: Promise<{ raw: TtrpcClient; typed: ContentClient }> | undefined;
  const dial = async () => {
    const raw = await TtrpcClient.connect(address);
    return { raw, typed: createTtrpcClient(content.ContentService, raw) };
  };
  return {
    async client() {
      const current = connection ? await connection.catch(() => undefined) : undefined;
      if (current && !current.raw.closed) return current.typed;
      connection = dial();
      return (await connection).typed;
    },
    close() {
      void connection?.then((c) => c.raw.close(), () => undefined);
    },
  };
}

/** Who the content calls are made for: the caller's namespace and lease travel on. */
export interface CallScope {
  namespace?: string;
  lease?: string;
  signal?: AbortSignal;
}

export function contentCallOptions(scope: CallScope): CallOptions {
  return {
    namespace: scope.namespace,
    metadata: scope.lease ? { 'containerd-lease': scope.lease } : undefined,
    signal: scope.signal,
  };
}
