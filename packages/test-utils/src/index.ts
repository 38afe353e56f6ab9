export { run, runOk, CommandError, type RunOptions, type RunResult } from './exec.js';
export { spawnDaemon, type Daemon } from './daemon.js';
export { tempDir, removeDir, cleanupTempDirs } from './temp.js';
export { waitFor, waitForSocket, canConnect, sleep, GiveUpError } from './wait.js';
export { mountsBelow, unmountBelow } from './mounts.js';
export { findProcesses, isAlive, terminate, type ProcessInfo } from './processes.js';
export { applyLayer, populateBusyboxRootfs, type TestLayer, type FileContent } from './rootfs.js';
export {
  buildTestImage,
  unpackTestImage,
  IMAGE_NAME_ANNOTATION,
  IMAGE_PATH,
  type BuildTestImageOptions,
  type TestImage,
} from './image.js';
export { ctr, ctrOk, CTR, type CtrOptions, type CtrResult } from './ctr.js';
export {
  startContainerd,
  containerdConfig,
  ALWAYS_DISABLED,
  CONTAINERD,
  type Containerd,
  type StartContainerdOptions,
  type ProxyPluginType,
} from './containerd.js';
export { startRegistry, pushWithSkopeo, freePort, type Registry } from './registry.js';
export { startBoxd, boxdBin, type Boxd, type StartBoxdOptions } from './boxd.js';
export { largeImage, type LargeImage, type LargeImageOptions } from './large-image.js';
