/**
 * The snapshotter conformance suite against upstream containerd 1.6's own
 * overlayfs snapshotter, through containerd's public gRPC API. This is what
 * proves the suite encodes upstream's semantics: the same suite runs against
 * boxd's snapshotters in their packages.
 */
import { afterAll, beforeAll } from 'vitest';
import { leases, snapshots } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { runSnapshotterSuite } from '@boxd/snapshotter-testsuite';
import { cleanupTempDirs, startContainerd, tempDir, type Containerd } from '@boxd/test-utils';

const NAMESPACE = 'conformance';
// containerd garbage-collects snapshots nothing references; the lease keeps the suite's.
const LEASE = 'snapshotter-conformance';

let containerd: Containerd | undefined;
let client: ReturnType<typeof createGrpcClient<typeof snapshots.SnapshotsService>> | undefined;

beforeAll(async () => {
  const dir = await tempDir('bx-cts-');
  containerd = await startContainerd({ dir });
  const leaseClient = createGrpcClient(leases.LeasesService, containerd.address);
  await leaseClient.Create({ id: LEASE }, { namespace: NAMESPACE });
  leaseClient.close();
});

afterAll(async () => {
  client?.close();
  await containerd?.stop();
  await cleanupTempDirs();
});

runSnapshotterSuite({
  name: 'upstream containerd 1.6 overlayfs',
  snapshotter: 'overlayfs',
  namespace: NAMESPACE,
  lease: LEASE,
  cleanup: false,
  mount: true,
  connect: () => (client = createGrpcClient(snapshots.SnapshotsService, containerd!.address)),
});
