/**
 * The content conformance suite against `npx boxd` itself: the public Content API as the
 * core serves it per namespace, through the metadata plugin's index and the content store.
 */
import { afterAll, beforeAll } from 'vitest';
import { content, leases } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { runContentSuite } from '@boxd/content-testsuite';
import { cleanupTempDirs, startBoxd, tempDir, type Boxd } from '@boxd/test-utils';

const NAMESPACE = 'content-conformance';
// boxd collects content nothing references, as containerd does; the lease keeps the suite's blobs.
const LEASE = 'content-conformance';

let boxd: Boxd | undefined;
const clients: Array<ReturnType<typeof createGrpcClient<typeof content.ContentService>>> = [];

beforeAll(async () => {
  const dir = await tempDir('bx-cbs-');
  boxd = await startBoxd({ dir });
  const leaseClient = createGrpcClient(leases.LeasesService, boxd.address);
  await leaseClient.Create({ id: LEASE }, { namespace: NAMESPACE });
  leaseClient.close();
});

afterAll(async () => {
  for (const client of clients) client.close();
  await boxd?.stop();
  await cleanupTempDirs();
});

runContentSuite({
  name: 'boxd core',
  namespace: NAMESPACE,
  metadata: { 'containerd-lease': LEASE },
  connect: () => {
    const client = createGrpcClient(content.ContentService, boxd!.address);
    clients.push(client);
    return client;
  },
  disconnect: (client) => clients.find((c) => c === client)?.close(),
});
