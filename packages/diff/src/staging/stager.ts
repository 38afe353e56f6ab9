/**
 * The layers this process has staged: started by a Stage call, claimed at
 * most once by an Apply of the same blob, removed when no Apply claimed them
 * in time. Staging is bounded by the blob bytes held at once.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { StagingConfig } from '../config.js';
import type { ContentStore } from '../content/store.js';
import type { JobRunner } from '../worker/runner.js';
import type { JobScope } from '../worker/jobs.js';
import type { StagedLayer } from './stage-layer.js';

export interface Stage {
  digest: string;
  dir: string;
  blobBytes: bigint;
  /** The staged layer, or undefined when staging failed (not a layer, say). */
  result: Promise<StagedLayer | undefined>;
}

interface Entry extends Stage {
  controller: AbortController;
  expiry?: NodeJS.Timeout;
}

export class Stager {
  private readonly stages = new Map<string, Entry>();
  private readonly removals = new Set<Promise<void>>();
  private heldBytes = 0n;
  private closed = false;

  private constructor(
    private readonly config: StagingConfig,
    private readonly runner: JobRunner,
    /** Where blob files are looked up before a job is handed out. */
    private readonly content: ContentStore,
    private readonly logger: Logger,
  ) {}

  /** Trees left by an earlier process are nobody's: they go first. */
  static async open(config: StagingConfig, runner: JobRunner, content: ContentStore, logger: Logger): Promise<Stager> {
    await rm(config.dir, { recursive: true, force: true });
    await mkdir(config.dir, { recursive: true, mode: 0o700 });
    await markTopDir(config.dir, logger);
    return new Stager(config, runner, content, logger);
  }

  get enabled(): boolean {
    return this.config.ttlMs > 0 && !this.closed;
  }

  /**
   * Stages a blob; true once it is staged, false when it is not a layer, is
   * staged already, or would go past the bound.
   */
  async stage(digest: string, size: bigint, scope: JobScope): Promise<boolean> {
    if (!this.enabled || this.stages.has(digest) || this.heldBytes + size > BigInt(this.config.maxBytes)) return false;
    const controller = new AbortController();
    const dir = join(this.config.dir, randomBytes(8).toString('hex'));
    const entry: Entry = { digest, dir, blobBytes: size, controller, result: Promise.resolve(undefined) };
    this.heldBytes += size;
    this.stages.set(digest, entry);
    entry.result = this.run(entry, scope).then(
      (layer) => {
        if (this.stages.get(digest) === entry) {
          entry.expiry = setTimeout(() => this.expire(entry), this.config.ttlMs);
          entry.expiry.unref();
        }
        this.logger.debug({ digest, diffId: layer.diffId }, 'layer staged');
        return layer;
      },
      (err: unknown) => {
        this.logger.debug({ digest, err }, 'not staged');
        if (this.stages.get(digest) === entry) this.release(this.take(digest)!);
        return undefined;
      },
    );
    return (await entry.result) !== undefined;
  }

  private async run(entry: Entry, scope: JobScope): Promise<StagedLayer> {
    const { digest, dir, blobBytes, controller } = entry;
    const blobFile = await this.content.blobFile(digest, { ...scope, signal: controller.signal });
    return this.runner.run({ kind: 'stage', job: { digest, size: blobBytes.toString(), dir, blobFile }, scope }, controller.signal);
  }

  /** The stage of a blob, out of the registry: the caller owns it and must `release` it. */
  take(digest: string): Stage | undefined {
    const entry = this.stages.get(digest);
    if (!entry) return undefined;
    this.stages.delete(digest);
    clearTimeout(entry.expiry);
    return entry;
  }

  /** Stops a stage still running and removes its directory once its job has ended. */
  release(stage: Stage): void {
    const entry = stage as Entry;
    entry.controller.abort();
    const removal = entry.result
      .then(() => rm(entry.dir, { recursive: true, force: true }))
      .catch((err: unknown) => this.logger.warn({ err, dir: entry.dir }, 'could not remove a staged tree'))
      .finally(() => {
        this.heldBytes -= entry.blobBytes;
        this.removals.delete(removal);
      });
    this.removals.add(removal);
  }

  private expire(entry: Entry): void {
    if (this.stages.get(entry.digest) !== entry) return;
    this.logger.debug({ digest: entry.digest }, 'staged layer expired unclaimed');
    this.release(this.take(entry.digest)!);
  }

  /** Stops staging and removes every staged tree. */
  async close(): Promise<void> {
    this.closed = true;
    for (const digest of [...this.stages.keys()]) this.release(this.take(digest)!);
    while (this.removals.size > 0) await Promise.all(this.removals);
  }
}

/**
 * Each stage is a directory hierarchy of its own: on ext2/3/4 the Orlov
 * allocator then spreads them over block groups (chattr +T) instead of
 * packing every layer next to the staging dir, where the inodes of the trees
 * just deleted also are. Without a journal, ext4 skips recently deleted
 * inodes one by one on every file it creates, which made extracting a layer
 * there ten times slower on our test machine. Other filesystems refuse the
 * flag, which changes nothing.
 */
function markTopDir(dir: string, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    execFile('chattr', ['+T', dir], (err) => {
      if (err) logger.debug({ dir, err: err.message }, 'staging dir not marked as a top directory');
      resolve();
    });
  });
}
