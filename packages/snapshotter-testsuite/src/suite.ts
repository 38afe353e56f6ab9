/**
 * The snapshotter conformance suite: registers vitest blocks that hold any
 * endpoint serving `containerd.services.snapshots.v1.Snapshots` to
 * containerd's semantics. Upstream containerd's own snapshotters, reached
 * through its gRPC socket, pass it; that is what keeps it honest.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { SnapshotHarness, type SnapshotsClient } from './harness.js';
import { lifecycleTests } from './tests/lifecycle.js';
import { errorTests } from './tests/errors.js';
import { labelAndListTests } from './tests/labels-list.js';
import { usageTests } from './tests/usage.js';
import { contentTests } from './tests/content.js';
import { deepChainTests } from './tests/deep-chain.js';

export interface SnapshotterSuiteOptions {
  /** Shown in the describe title. */
  name: string;
  /** Sent in field 1 of every request (e.g. `overlayfs`, or a proxy plugin's name). */
  snapshotter: string;
  /** Called once before the tests; the endpoint must be serving by then. */
  connect: () => SnapshotsClient | Promise<SnapshotsClient>;
  /** containerd namespace header, for endpoints that need one (containerd's own API does). */
  namespace?: string;
  /**
   * containerd lease header. containerd's API garbage-collects snapshots
   * nothing references, so against it the suite's snapshots must be leased.
   */
  lease?: string;
  /** Mount the returned mounts with mount(8) and check files through them (needs root). */
  mount: boolean;
  /**
   * Whether Cleanup is implemented (default true). containerd 1.6's own API
   * answers UNIMPLEMENTED: its metadata layer does not pass Cleanup through.
   */
  cleanup?: boolean;
  /** Layers in the deep-chain test (default 130: deeper than one page of absolute lowerdirs). */
  deepChainLayers?: number;
}

/** What each group of tests gets: the harness, available once `beforeAll` has connected. */
export interface SuiteContext {
  readonly h: SnapshotHarness;
  readonly options: Readonly<SnapshotterSuiteOptions>;
}

export function runSnapshotterSuite(options: SnapshotterSuiteOptions): void {
  describe(`snapshotter conformance: ${options.name}`, () => {
    let harness: SnapshotHarness | undefined;
    const ctx: SuiteContext = {
      get h() {
        if (!harness) throw new Error('the suite has not connected (did beforeAll fail?)');
        return harness;
      },
      options,
    };

    beforeAll(async () => {
      harness = new SnapshotHarness(await options.connect(), options.snapshotter, { namespace: options.namespace, lease: options.lease });
    });
    afterAll(async () => {
      await harness?.dispose();
    });

    describe('lifecycle', () => lifecycleTests(ctx));
    describe('errors', () => errorTests(ctx));
    describe('labels and list', () => labelAndListTests(ctx));
    describe('usage', () => usageTests(ctx));
    if (options.mount) describe('content through mounts', () => contentTests(ctx));
    describe('deep chain', () => deepChainTests(ctx));
  });
}
