/**
 * The content conformance suite against upstream containerd 1.6's own content
 * service, through containerd's public gRPC socket. This is what proves the
 * suite encodes upstream's semantics; the same suite runs against boxd's
 * content store in packages/content-store.
 */
import { afterAll, beforeAll } from 'vitest';
import { content, leases } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { runContentSuite } from '@boxd/content-testsuite';
import { cleanupTempDirs, startContainerd, tempDir, type Containerd } from '@boxd/test-utils';

const NAMESPACE = 'content-conformance';
// containerd garbage-collects content nothing references; the lease keeps the suite's blobs.
const LEASE = 'content-conformance';

let containerd: Containerd | undefined;
const clients: Array<ReturnType<typeof createGrpcClient<typeof content.ContentService>>> = [];

beforeAll(async () => {
  const dir = await tempDir('bx-ccs-');
  containerd = await startContainerd({ dir });
  const leaseClient = createGrpcClient(leases.LeasesService, containerd.address);
  await leaseClient.Create({ id: LEASE }, { namespace: NAMESPACE });
  leaseClient.close();
});

afterAll(async () => {
  for (const client of clients) client.close();
  await containerd?.stop();
  await cleanupTempDirs();
});

runContentSuite({
  name: 'upstream containerd 1.6',
  namespace: NAMESPACE,
  metadata: { 'containerd-lease': LEASE },
  // containerd 1.6 numbers Read chunks from the start of the requested range.
  readOffsets: 'relative',
  connect: () => {
    const client = createGrpcClient(content.ContentService, containerd!.address);
    clients.push(client);
    return client;
  },
  disconnect: (client) => clients.find((c) => c === client)?.close(),
});
