export { SnapshotStore, MAX_KEY_BYTES, type Placement } from './store.js';
export { SnapshotDirs } from './dirs.js';
export { diskUsage } from './usage.js';
export { Kind, kindName, type SnapshotRecord, type SnapshotInfo, type SnapshotChain, type Usage } from './records.js';
export {
  Snapshotter,
  snapshotFields,
  type Mount,
  type SnapshotBackend,
  type SnapshotLogger,
  type SnapshotterOptions,
} from './snapshotter.js';
export {
  createSnapshotsService,
  snapshotsImplementation,
  toProtoInfo,
  LIST_BATCH,
  type SnapshotsServiceHandle,
} from './service.js';
