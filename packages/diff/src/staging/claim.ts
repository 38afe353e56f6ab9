/**
 * Claiming a staged layer for an Apply: when the target is an empty overlay
 * upper dir (or an empty bind-mounted directory) and the staged tree is what
 * a normal apply would have made there, the tree is moved into place with a
 * few renames and the DiffID verified while staging is returned.
 */
import { readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError } from '@boxd/api';
import type { Logger } from 'pino';
import type { AppliedLayer, ApplyJob, LayerDescriptor } from '../apply/apply-layer.js';
import { getXattr, listXattrs, setXattr } from '../apply/special-files.js';
import type { StreamProcessorConfig } from '../config.js';
import { compressionOf, MEDIA_TYPE_TAR } from '../media-types.js';
import { isBind, overlayDirs } from '../mounts.js';
import { stagedTree, type StagedLayer } from './stage-layer.js';
import type { Stager } from './stager.js';

interface ClaimTarget {
  dir: string;
  /** `plain`: whiteouts would delete there, so a tree with overlay markers does not fit. */
  mode: 'overlay' | 'plain';
  /** Lower dirs under the upper dir: implied parents would take their attributes. */
  hasLowers: boolean;
}

async function isEmptyDir(path: string): Promise<boolean> {
  const names = await readdir(path).catch(() => undefined);
  return names !== undefined && names.length === 0;
}

/** Where an Apply could take a staged tree, judged before waiting for the stage to finish. */
async function claimTarget(job: ApplyJob, processors: StreamProcessorConfig[]): Promise<ClaimTarget | undefined> {
  const type = job.diff.mediaType;
  if (compressionOf(type) === undefined || processors.some((p) => p.accepts.includes(type))) return undefined;
  if (job.mounts.length !== 1) return undefined;
  const mount = job.mounts[0]!;
  let target: ClaimTarget | undefined;
  if (isBind(mount)) target = { dir: mount.source, mode: 'plain', hasLowers: false };
  else if (mount.type === 'overlay') {
    const dirs = overlayDirs(mount);
    if (dirs.upperdir) target = { dir: dirs.upperdir, mode: 'overlay', hasLowers: dirs.lowerdirs.length > 0 };
  }
  return target && (await isEmptyDir(target.dir)) ? target : undefined;
}

function fits(target: ClaimTarget, staged: StagedLayer, diff: LayerDescriptor): boolean {
  const compression = compressionOf(diff.mediaType);
  if (compression !== 'sniff' && compression !== staged.compression) return false;
  // A size that disagrees is the normal apply's error to report.
  if (BigInt(diff.size || '0') > 0n && diff.size !== staged.blobSize) return false;
  if (target.mode === 'plain' && staged.overlayMarkers > 0) return false;
  return !(target.hasLowers && staged.impliedDirs > 0);
}

let warnedCrossDevice = false;

/** Renames the staged tree's entries into `dir`; on any failure puts back what moved and says false. */
async function moveInto(stageDir: string, dir: string, logger: Logger): Promise<boolean> {
  const tree = stagedTree(stageDir);
  const moved: string[] = [];
  try {
    for (const name of await readdir(tree)) {
      await rename(join(tree, name), join(dir, name));
      moved.push(name);
    }
  } catch (err) {
    for (const name of moved) await rename(join(dir, name), join(tree, name)).catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code === 'EXDEV' && !warnedCrossDevice) {
      warnedCrossDevice = true;
      logger.warn({ staging: stageDir, target: dir }, 'staged layers cannot be moved to the snapshots (another filesystem): put staging_dir beside them');
    }
    return false;
  }
  // An opaque marker for the layer's root is an xattr on the tree itself.
  for (const name of listXattrs(tree)) setXattr(dir, name, getXattr(tree, name)!);
  return true;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new CancelledError('context canceled'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CancelledError('context canceled'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The Apply done with a staged tree, or undefined when it has to be done as usual. */
export async function claimStaged(stager: Stager, job: ApplyJob, processors: StreamProcessorConfig[], signal: AbortSignal, logger: Logger): Promise<AppliedLayer | undefined> {
  const stage = stager.take(job.diff.digest);
  if (!stage) return undefined;
  try {
    const target = await claimTarget(job, processors);
    const staged = target && (await untilAborted(stage.result, signal));
    const claimed = staged !== undefined && fits(target!, staged, job.diff) && (await moveInto(stage.dir, target!.dir, logger));
    logger.debug({ digest: job.diff.digest, claimed }, 'staged layer looked up');
    return claimed ? { mediaType: MEDIA_TYPE_TAR, digest: staged.diffId, size: staged.uncompressedSize } : undefined;
  } finally {
    stager.release(stage);
  }
}
