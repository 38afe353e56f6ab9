export { runSnapshotterSuite, type SnapshotterSuiteOptions, type SuiteContext } from './suite.js';
export { SnapshotHarness, codeOf, type SnapshotsClient, type SnapshotTree, type UsageNumbers } from './harness.js';
export {
  compactLowerdir,
  mountAll,
  unmountAll,
  withMounts,
  COMPACT_THRESHOLD,
  type CompactedOptions,
  type MountSpec,
} from './mount.js';
