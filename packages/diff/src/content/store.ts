/**
 * The diff plugin is a client of a Content service on a socket (ours or
 * upstream containerd's), over ttrpc or gRPC.
 */
import { boxdContent, Code, content, isCode, UnavailableError, type CallOptions, type ServiceClient } from '@boxd/api';
import { TtrpcClient, createTtrpcClient } from '@boxd/ttrpc';

export type ContentClient = ServiceClient<typeof content.ContentService>;
type BlobFilesClient = ServiceClient<typeof boxdContent.BlobFilesService>;

export interface BlobFile {
  path: string;
  size: bigint;
}

export interface ContentStore {
  /** A client on a live connection (ttrpc connections are re-dialled after they drop). */
  client(): Promise<ContentClient>;
  /**
   * Where a committed blob's file is, when the store tells (boxd's store
   * does); undefined when it does not serve that. NOT_FOUND as Read would be.
   */
  blobFile(digest: string, scope: CallScope): Promise<BlobFile | undefined>;
  close(): void;
}

interface Clients {
  content: ContentClient;
  files: BlobFilesClient;
}

export function connectContentStore(address: string | undefined, transport: 'ttrpc' | 'grpc'): ContentStore {
  if (!address) {
    const missing = () => Promise.reject(new UnavailableError('diff: no content store configured (content_address)'));
    return { client: missing, blobFile: missing, close: () => undefined };
  }
  const { clients, close } = transport === 'grpc' ? grpcClients(address) : ttrpcClients(address);
  // Asked once: a store that does not serve BlobFiles will not start to.
  let serves = true;
  return {
    client: async () => (await clients()).content,
    async blobFile(digest, scope) {
      if (!serves) return undefined;
      try {
        const res = await (await clients()).files.Path({ digest }, contentCallOptions(scope));
        return { path: res.path, size: BigInt(res.size.toString()) };
      } catch (err) {
        if (!isCode(err, Code.UNIMPLEMENTED)) throw err;
        serves = false;
        return undefined;
      }
    },
    close,
  };
}

function grpcClients(address: string): { clients: () => Promise<Clients>; close(): void } {
  // gRPC (HTTP/2) is loaded only when the content store speaks it.
  const loaded = import('@boxd/grpc').then(({ createGrpcClient }) => ({
    content: createGrpcClient(content.ContentService, address),
    files: createGrpcClient(boxdContent.BlobFilesService, address),
  }));
  return {
    clients: () => loaded,
    close: () => void loaded.then((c) => (c.content.close(), c.files.close())),
  };
}

function ttrpcClients(address: string): { clients: () => Promise<Clients>; close(): void } {
  let connection: Promise<{ raw: TtrpcClient; typed: Clients }> | undefined;
  const dial = async () => {
    const raw = await TtrpcClient.connect(address);
    return { raw, typed: { content: createTtrpcClient(content.ContentService, raw), files: createTtrpcClient(boxdContent.BlobFilesService, raw) } };
  };
  return {
    async clients() {
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
