/**
 * @boxd/runtime-shim-runc: the containerd runtime v2 shim `containerd-shim-boxd-v2`
 * (runtime name `io.containerd.boxd.v2`). The binary is the product; these exports
 * are for embedding and tests.
 */
export { parseFlags, daemonArgs, type ShimFlags } from './flags.js';
export {
  groupingPolicy,
  groupKey,
  shimSocketPath,
  GROUP_ANNOTATIONS,
  GROUPING_ENV,
  SOCKET_DIR_ENV,
  DEFAULT_SOCKET_DIR,
  type GroupingPolicy,
} from './grouping.js';
export { startCommand, writeAddressFile, SOCKET_ENV, DAEMON_NODE_FLAGS } from './start.js';
export { deleteCommand, KILLED_EXIT_STATUS } from './delete-command.js';
export { runDaemon, idleExitDelay, IDLE_EXIT_ENV, DEFAULT_IDLE_EXIT_MS } from './daemon.js';
export { compactOverlayOptions, mountAll, unmountAll, PAGE_SIZE, type MountSpec } from './mounts.js';
export { stdioScheme, type StdioSpec } from './stdio.js';
export { loadContainer, ShimRegistry, RECORD_FILE, STATE_DIR_ENV, DEFAULT_STATE_DIR, type ContainerRecord, type ProcessRecord } from './records.js';
export { cgroupPathsOf, metricsAny, V1_METRICS_TYPE, V2_METRICS_TYPE } from './cgroups.js';
export { UNKNOWN_EXIT_STATUS } from './container.js';
export { DEFAULT_RUNC_ROOT, runtimeConfig } from './runc.js';
export { encodeDeleteResponse } from './delete-response.js';
