/**
 * Task checkpoints as content: the shim checkpoints into a directory, the
 * core stores it as one tar blob in the caller's namespace; restoring
 * unpacks that blob for the shim's Create.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Long from 'long';
import { Readable } from 'node:stream';
import { content, FailedPreconditionError, isAlreadyExists, type CallContext, type Init, type ServiceImplementation, protobuf, types } from '@boxd/api';
import type { ShimTask } from './task-manager.js';

export const CHECKPOINT_MEDIA_TYPE = 'application/vnd.containerd.container.criu.checkpoint.criu.tar';

function tar(args: string[], input?: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, { stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    if (input) input.pipe(child.stdin!);
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new FailedPreconditionError(`tar ${args[0]} failed: ${err.trim()}`))));
  });
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

export class Checkpoints {
  constructor(private readonly contentApi: ServiceImplementation<typeof content.ContentService>) {}

  async create(task: ShimTask, options: Init<protobuf.Any> | null | undefined, ctx: CallContext): Promise<Init<types.Descriptor>[]> {
    const dir = await mkdtemp(join(tmpdir(), 'boxd-checkpoint-'));
    try {
      const image = join(dir, 'image');
      await task.task.Checkpoint({ id: task.id, path: image, options });
      const archive = join(dir, 'checkpoint.tar');
      await tar(['-cf', archive, '-C', image, '.']);
      return [await this.store(archive, CHECKPOINT_MEDIA_TYPE, ctx)];
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Writes a file into the namespace's content through the public Content service logic. */
  private async store(file: string, mediaType: string, ctx: CallContext): Promise<Init<types.Descriptor>> {
    const digest = await sha256(file);
    const size = (await stat(file)).size;
    const ref = `checkpoint-${digest}`;
    async function* requests(): AsyncIterable<content.WriteContentRequest> {
      const base = { ref, total: Long.fromNumber(size), expected: digest, offset: Long.ZERO, data: Buffer.alloc(0), labels: {} };
      yield { ...base, action: content.WriteAction.STAT };
      let offset = 0;
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        yield { ...base, action: content.WriteAction.WRITE, offset: Long.fromNumber(offset), data: chunk };
        offset += chunk.length;
      }
      yield { ...base, action: content.WriteAction.COMMIT, offset: Long.fromNumber(offset) };
    }
    try {
      for await (const _ of this.contentApi.Write(requests(), ctx)) void _;
    } catch (err) {
      // Checkpointed before with the same bytes: the blob is already there.
      if (!isAlreadyExists(err)) throw err;
    }
    return { mediaType, digest, size };
  }

  /** Unpacks a checkpoint blob into a directory for the shim. */
  async restore(desc: Init<types.Descriptor>, ctx: CallContext): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'boxd-restore-'));
    const chunks = this.contentApi.Read({ digest: desc.digest ?? '', offset: Long.ZERO, size: Long.ZERO }, ctx);
    const data = Readable.from((async function* () {
      for await (const chunk of chunks) yield chunk.data;
    })());
    await tar(['-xf', '-', '-C', dir], data);
    return dir;
  }
}
