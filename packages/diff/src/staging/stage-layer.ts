/**
 * Staging a layer (runs in a worker): the blob applied into an empty tree of
 * its own, in overlayfs' upper-dir format with no lower dirs, and what a
 * later Apply needs to know to adopt that tree instead of extracting again.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { applyTar } from '../apply/apply-tar.js';
import { decompress } from '../apply/decode-layer.js';
import type { DiffConfig } from '../config.js';
import { openBlob } from '../content/open-blob.js';
import type { BlobFile, CallScope, ContentStore } from '../content/store.js';
import { Digester, parseDigest } from '../digests.js';
import { sniffCompression } from '../media-types.js';
import { peek, tap } from '../streams.js';

export interface StageJob {
  digest: string;
  /** Decimal string: exact for any 64-bit size. */
  size: string;
  /** The stage's own directory: the tree goes to `fs/`, scratch files to `work/`. */
  dir: string;
  /** The blob's file, when the content store named one. */
  blobFile?: BlobFile;
}

export interface StagedLayer {
  compression: 'none' | 'gzip' | 'zstd';
  /** The DiffID, verified over every byte of the uncompressed tar. */
  diffId: string;
  uncompressedSize: string;
  blobSize: string;
  /** Parent directories the layer does not list: over lower dirs they would take the lowers' attributes. */
  impliedDirs: number;
  /** Whiteouts and opaque markers: a plain directory would have deleted instead. */
  overlayMarkers: number;
}

export interface StageContext {
  config: DiffConfig;
  content: ContentStore;
  scope: CallScope;
  warn?: (details: Record<string, unknown>, message: string) => void;
}

export const stagedTree = (dir: string) => join(dir, 'fs');
const scratch = (dir: string) => join(dir, 'work');

/** Applies the blob into `job.dir`; a blob that is not a tar layer fails (INVALID_ARGUMENT) at its first bytes. */
export async function stageLayer(job: StageJob, ctx: StageContext): Promise<StagedLayer> {
  parseDigest(job.digest);
  await mkdir(stagedTree(job.dir), { recursive: true });
  await mkdir(scratch(job.dir), { recursive: true });
  let blobSize = 0n;
  const blob = tap(await openBlob(ctx.content, job.digest, ctx.scope, job.blobFile), (chunk) => (blobSize += BigInt(chunk.length)));
  const { head, stream } = await peek(blob, 4);
  // Only what Apply decodes on its own: a blob needing a stream processor looks like none of these.
  const compression = sniffCompression(head);
  const uncompressed = new Digester('sha256');
  const stats = await applyTar(
    decompress(stream, compression, ctx.config),
    { root: stagedTree(job.dir), mode: 'overlay', parents: [], scratchDir: scratch(job.dir), allowDevices: ctx.config.allowDevices, signal: ctx.scope.signal, warn: ctx.warn },
    uncompressed.update,
  );
  return { compression, diffId: uncompressed.digest(), uncompressedSize: uncompressed.size.toString(), blobSize: blobSize.toString(), ...stats };
}
