/** Diff: compare two mount sets, write the changes as a layer into the content store. */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { InternalError, InvalidArgumentError, UnimplementedError } from '@boxd/api';
import type { DiffConfig } from '../config.js';
import type { CallScope, ContentStore } from '../content/store.js';
import { writeBlob } from '../content/write-blob.js';
import { Digester } from '../digests.js';
import { diffOutputCompression, LABEL_UNCOMPRESSED } from '../media-types.js';
import { readOnlyView, type MountedDir, type Mount } from '../mounts.js';
import { tap, throughProcess, throughTransform, type ByteStream } from '../streams.js';
import { diffTar } from './diff-tar.js';

export interface DiffJob {
  left: Mount[];
  right: Mount[];
  mediaType: string;
  ref: string;
  labels: Record<string, string>;
}

export interface CreatedLayer {
  mediaType: string;
  digest: string;
  size: string;
}

export interface DiffContext {
  config: DiffConfig;
  content: ContentStore;
  scope: CallScope;
}

/** No lower mounts: the diff is against an empty tree. */
async function emptyTree(tmpDir: string): Promise<MountedDir> {
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const root = await mkdtemp(join(tmpDir, 'empty-'));
  return { root, release: () => rmdir(root) };
}

function compress(tar: ByteStream, compression: 'none' | 'gzip' | 'zstd', config: DiffConfig): ByteStream {
  const failed = (what: string) => (err: Error | string) => new InternalError(`${what}: ${typeof err === 'string' ? err : err.message}`);
  switch (compression) {
    case 'none':
      return tar;
    case 'gzip':
      return throughTransform(tar, createGzip({ chunkSize: 1 << 20 }), failed('gzip'));
    case 'zstd':
      return throughProcess(tar, { path: config.zstdPath, args: ['-cq', '-3'], label: 'zstd' }, failed('zstd'));
  }
}

function uniqueRef(): string {
  return `diff-${process.hrtime.bigint()}-${randomBytes(4).toString('hex')}`;
}

export async function createDiff(job: DiffJob, ctx: DiffContext): Promise<CreatedLayer> {
  const output = diffOutputCompression(job.mediaType);
  if (!output) throw new UnimplementedError(`unsupported diff media type: ${job.mediaType}`);
  if (job.right.length === 0) throw new InvalidArgumentError('diff: no upper (right) mounts given');
  const lower = job.left.length > 0 ? await readOnlyView(job.left, ctx.config.tmpDir) : await emptyTree(ctx.config.tmpDir);
  try {
    const upper = await readOnlyView(job.right, ctx.config.tmpDir);
    try {
      const diffId = new Digester('sha256');
      const blob = new Digester('sha256');
      const whiteoutTime = Math.floor(Date.now() / 1000);
      const tar = tap(Readable.from(diffTar(lower.root, upper.root, { whiteoutTime })), diffId.update);
      const stored = tap(compress(tar, output.compression, ctx.config), blob.update);
      const client = await ctx.content.client();
      const written = await writeBlob(
        client,
        {
          ref: job.ref || uniqueRef(),
          commit: () => ({ digest: blob.digest(), size: blob.size, labels: { ...job.labels, [LABEL_UNCOMPRESSED]: diffId.digest() } }),
        },
        stored,
        ctx.scope,
      );
      return { mediaType: output.mediaType, digest: written.digest, size: written.size.toString() };
    } finally {
      await upper.release();
    }
  } finally {
    await lower.release();
  }
}
