/** Apply: read a layer blob, decode it to a tar, extract it onto the mounts. */
import { DataLossError, InvalidArgumentError, type protobuf } from '@boxd/api';
import type { DiffConfig } from '../config.js';
import { openBlob } from '../content/open-blob.js';
import type { BlobFile, CallScope, ContentStore } from '../content/store.js';
import { Digester, parseDigest } from '../digests.js';
import { MEDIA_TYPE_TAR } from '../media-types.js';
import { checkDirectory, isBind, overlayDirs, tempMount, type Mount } from '../mounts.js';
import { tap } from '../streams.js';
import { applyTar, type ApplyTarOptions } from './apply-tar.js';
import { decodeLayer } from './decode-layer.js';

export interface LayerDescriptor {
  mediaType: string;
  digest: string;
  /** Decimal string: exact for any 64-bit size. */
  size: string;
}

export interface ApplyJob {
  diff: LayerDescriptor;
  mounts: Mount[];
  payloads: Record<string, protobuf.Any>;
  /** The blob's file, when the content store named one. */
  blobFile?: BlobFile;
}

export interface AppliedLayer {
  mediaType: string;
  digest: string;
  size: string;
}

export interface ApplyContext {
  config: DiffConfig;
  content: ContentStore;
  scope: CallScope;
  warn?: ApplyTarOptions['warn'];
}

interface Target {
  options: Pick<ApplyTarOptions, 'root' | 'mode' | 'parents' | 'scratchDir'>;
  release(): Promise<void>;
}

/**
 * Where a layer goes: a bind mount's source directly, an overlay's upperdir
 * directly (in overlayfs' whiteout format), anything else mounted on a temp dir.
 */
async function targetFor(mounts: Mount[], tmpDir: string): Promise<Target> {
  if (mounts.length === 0) throw new InvalidArgumentError('apply: no mounts given');
  const only = mounts.length === 1 ? mounts[0]! : undefined;
  if (only && isBind(only)) {
    await checkDirectory(only.source, 'bind mount source');
    return { options: { root: only.source, mode: 'plain' }, release: async () => undefined };
  }
  if (only?.type === 'overlay') {
    const dirs = overlayDirs(only);
    if (!dirs.upperdir) throw new InvalidArgumentError('apply: overlay mount has no upperdir (read-only view)');
    await checkDirectory(dirs.upperdir, 'overlay upperdir');
    return { options: { root: dirs.upperdir, mode: 'overlay', parents: dirs.lowerdirs, scratchDir: dirs.workdir }, release: async () => undefined };
  }
  const mounted = await tempMount(mounts, tmpDir, false);
  return { options: { root: mounted.root, mode: 'plain' }, release: mounted.release };
}

export function requireDescriptor(diff: LayerDescriptor | undefined): LayerDescriptor {
  if (!diff?.digest) throw new InvalidArgumentError('apply: the request has no layer descriptor (diff.digest)');
  parseDigest(diff.digest);
  return diff;
}

export async function applyLayer(job: ApplyJob, ctx: ApplyContext): Promise<AppliedLayer> {
  const diff = requireDescriptor(job.diff);
  const target = await targetFor(job.mounts, ctx.config.tmpDir);
  try {
    // The content store verified the blob's digest when it was committed; counting its bytes is enough here.
    let blobSize = 0n;
    const uncompressed = new Digester('sha256');
    const compressed = tap(await openBlob(ctx.content, diff.digest, ctx.scope, job.blobFile), (chunk) => (blobSize += BigInt(chunk.length)));
    const tar = await decodeLayer(compressed, diff.mediaType, {
      processors: ctx.config.streamProcessors,
      payloads: job.payloads,
      zstdPath: ctx.config.zstdPath,
    });
    await applyTar(tar, { ...target.options, allowDevices: ctx.config.allowDevices, signal: ctx.scope.signal, warn: ctx.warn }, uncompressed.update);
    checkBlobSize(diff, blobSize);
    return { mediaType: MEDIA_TYPE_TAR, digest: uncompressed.digest(), size: uncompressed.size.toString() };
  } finally {
    await target.release();
  }
}

function checkBlobSize(diff: LayerDescriptor, actual: bigint): void {
  const size = BigInt(diff.size || '0');
  if (size > 0n && actual !== size) throw new DataLossError(`layer ${diff.digest}: content is ${actual} bytes, descriptor says ${size}`);
}
