/**
 * The content store: committed blobs with labels, and ingests in progress.
 * Namespace-less: the metadata layer above it keeps per-namespace ownership.
 */
import { mkdir, open, unlink } from 'node:fs/promises';
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  OutOfRangeError,
  applyLabelMask,
  fieldsAdaptor,
  parseFilters,
} from '@boxd/api';
import type { Logger } from '@boxd/plugin-kit';
import type { StoreContext } from './context.js';
import { parseDigest, type Digest } from './digest.js';
import { isErrno, removeTree, statFile } from './fsutil.js';
import { storedLabels } from './labels.js';
import { IngestWriter, type IngestStatus, type WriterOptions } from './ingest-writer.js';
import { StoreLayout } from './layout.js';
import { RefLocks } from './locks.js';
import { nowNs, RecordDb, type BlobRecord, type IngestRecord } from './records.js';
import { recoverStore, type RecoveryReport } from './recovery.js';

export interface ContentInfo {
  digest: string;
  size: bigint;
  createdAt: bigint;
  updatedAt: bigint;
  labels: Record<string, string>;
}

export interface ReadChunk {
  /** Absolute offset of `data` in the blob. */
  offset: bigint;
  data: Buffer;
}

/** Upper bound of one Read response's data. */
export const READ_CHUNK_SIZE = 1 << 20;

export class ContentStore {
  private constructor(
    private readonly ctx: StoreContext,
    /** What startup found and repaired after an unclean stop. */
    readonly recovery: RecoveryReport,
  ) {}

  static async open(root: string, logger: Logger): Promise<ContentStore> {
    const layout = new StoreLayout(root);
    await mkdir(layout.blobsDir, { recursive: true });
    await mkdir(layout.ingestDir, { recursive: true });
    const ctx: StoreContext = { layout, db: RecordDb.open(layout.dbPath), locks: new RefLocks(), logger };
    try {
      return new ContentStore(ctx, await recoverStore(ctx));
    } catch (err) {
      await ctx.db.close();
      throw err;
    }
  }

  get root(): string {
    return this.ctx.layout.root;
  }

  info(digest: string): ContentInfo {
    const d = parseDigest(digest);
    return infoOf(d.value, this.blobRecord(d));
  }

  hasBlob(digest: string): boolean {
    return this.ctx.db.blobs.get(parseDigest(digest).value) !== undefined;
  }

  /** Applies a labels field mask (`labels`, `labels.<k>`; none = replace all labels). */
  async update(digest: string, labels: Record<string, string>, paths: readonly string[]): Promise<ContentInfo> {
    const d = parseDigest(digest);
    const { db } = this.ctx;
    // Read-modify-write inside one transaction so concurrent label updates do
    // not lose each other's keys. Errors are returned, not thrown, so they
    // cannot disturb other writes batched into the same transaction.
    const result = await db.transaction((): BlobRecord | Error => {
      const current = db.blobs.get(d.value);
      if (!current) return new NotFoundError(`content ${d.value}`);
      let next: Record<string, string>;
      try {
        next = storedLabels(applyLabelMask(current.labels, labels, paths, `content info ${JSON.stringify(d.value)}`));
      } catch (err) {
        return err as Error;
      }
      const updated = { ...current, labels: next, updatedAt: nowNs() };
      db.blobs.put(d.value, updated);
      return updated;
    });
    if (result instanceof Error) throw result;
    return infoOf(d.value, result);
  }

  /** Every blob matching the filters (fields `digest`, `size`, `labels.<k>`). */
  list(filters: readonly string[]): ContentInfo[] {
    const filter = parseFilters(filters);
    const out: ContentInfo[] = [];
    for (const { key, value } of this.ctx.db.blobs.getRange()) {
      const info = infoOf(key, value);
      if (filter.always || filter.match(fieldsAdaptor({ digest: info.digest, size: info.size }, { labels: info.labels }))) out.push(info);
    }
    return out;
  }

  async delete(digest: string): Promise<void> {
    const d = parseDigest(digest);
    this.blobRecord(d);
    // File first: a crash in between leaves a record without a blob, which
    // startup drops, so the delete still completes.
    await unlink(this.ctx.layout.blobPath(d)).catch((err) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
    await this.ctx.db.blobs.remove(d.value);
    this.ctx.logger.debug({ digest: d.value }, 'deleted');
  }

  /** Streams `size` bytes from `offset` (`size <= 0`: to the end) in chunks of at most 1 MiB. */
  async *read(digest: string, offset: bigint, size: bigint): AsyncGenerator<ReadChunk> {
    const d = parseDigest(digest);
    this.blobRecord(d);
    const file = await open(this.ctx.layout.blobPath(d), 'r').catch((err) => {
      throw isErrno(err, 'ENOENT') ? new NotFoundError(`content ${d.value}`) : err;
    });
    try {
      const { size: blobSize } = await file.stat({ bigint: true });
      let position = offset < 0n ? 0n : offset;
      if (position > blobSize) throw new OutOfRangeError(`read past object length ${blobSize} bytes`);
      const end = size <= 0n || position + size > blobSize ? blobSize : position + size;
      while (position < end) {
        const want = Number(end - position < READ_CHUNK_SIZE ? end - position : BigInt(READ_CHUNK_SIZE));
        // A fresh buffer per chunk: the transport may still hold the previous one.
        const data = Buffer.allocUnsafe(want);
        const { bytesRead } = await file.read(data, 0, want, filePosition(position));
        if (bytesRead === 0) break;
        yield { offset: position, data: bytesRead === want ? data : data.subarray(0, bytesRead) };
        position += BigInt(bytesRead);
      }
    } finally {
      await file.close();
    }
  }

  async status(ref: string): Promise<IngestStatus> {
    const key = this.ctx.layout.ingestKey(ref);
    const record = this.ctx.db.ingests.get(key);
    const status = record?.ref === ref ? await this.statusOf(key, record) : undefined;
    if (!status) throw new NotFoundError(`ingest ref ${JSON.stringify(ref)}`);
    return status;
  }

  /** Ingests matching the filters (field `ref`). */
  async listStatuses(filters: readonly string[]): Promise<IngestStatus[]> {
    const filter = parseFilters(filters);
    const out: IngestStatus[] = [];
    for (const { key, value } of [...this.ctx.db.ingests.getRange()]) {
      if (!filter.always && !filter.match(fieldsAdaptor({ ref: value.ref }))) continue;
      const status = await this.statusOf(key, value);
      if (status) out.push(status);
    }
    return out;
  }

  /** The offset of an ingest is the size of its data file: the bytes that are really there. */
  private async statusOf(key: string, record: IngestRecord): Promise<IngestStatus | undefined> {
    // An active writer may still have a write in flight; wait so Status reads its own writes.
    await this.ctx.locks.holder(record.ref)?.settle();
    const data = await statFile(this.ctx.layout.ingestDataPath(key));
    if (!data) return undefined;
    const { ref, total, expected, startedAt } = record;
    const updatedAt = data.mtimeNs > record.updatedAt ? data.mtimeNs : record.updatedAt;
    return { ref, offset: data.size, total, expected, startedAt, updatedAt };
  }

  async abort(ref: string): Promise<void> {
    const key = this.ctx.layout.ingestKey(ref);
    if (this.ctx.db.ingests.get(key)?.ref !== ref) throw new NotFoundError(`ingest ref ${JSON.stringify(ref)}`);
    await this.ctx.locks.holder(ref)?.invalidate();
    // Record first: a crash in between leaves an orphan directory, which startup removes.
    await this.ctx.db.ingests.remove(key);
    await removeTree(this.ctx.layout.ingestPath(key));
    this.ctx.logger.debug({ ref }, 'aborted ingest');
  }

  /**
   * Opens the ingest for a ref, resuming it when it exists. ALREADY_EXISTS when
   * the expected digest is committed; UNAVAILABLE while another writer holds the ref.
   */
  async writer(options: WriterOptions): Promise<IngestWriter> {
    if (!options.ref) throw new InvalidArgumentError('ref must not be empty');
    if (options.expected && this.hasBlob(options.expected)) throw new AlreadyExistsError(`content ${options.expected}`);
    await this.ctx.locks.acquire(options.ref);
    try {
      const writer = await IngestWriter.open(this.ctx, options);
      this.ctx.locks.setHolder(options.ref, writer);
      return writer;
    } catch (err) {
      this.ctx.locks.release(options.ref);
      throw err;
    }
  }

  /** Closes active writers (their ingests stay resumable) and the database. */
  async close(): Promise<void> {
    for (const holder of this.ctx.locks.holders()) {
      await holder.close().catch((err) => this.ctx.logger.warn({ err }, 'closing an active ingest failed'));
    }
    await this.ctx.db.close();
  }

  private blobRecord(digest: Digest): BlobRecord {
    const record = this.ctx.db.blobs.get(digest.value);
    if (!record) throw new NotFoundError(`content ${digest.value}`);
    return record;
  }
}

/** Node's fs takes positions as numbers; every real file offset fits one exactly. */
function filePosition(position: bigint): number {
  if (position > BigInt(Number.MAX_SAFE_INTEGER)) throw new OutOfRangeError(`offset ${position} is beyond any file`);
  return Number(position);
}

function infoOf(digest: string, record: BlobRecord): ContentInfo {
  return { digest, size: record.size, createdAt: record.createdAt, updatedAt: record.updatedAt, labels: { ...record.labels } };
}
