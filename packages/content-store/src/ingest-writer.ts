/**
 * One open ingest: appends to `ingest/<key>/data`, hashes as it goes, and on
 * commit moves the verified bytes under their digest.
 *
 * The caller holds the ref's lock for the writer's whole life; `close()`
 * releases it. A failed size or digest check leaves the ingest in place
 * (resumable, as upstream does); committing an existing digest removes it.
 */
import { constants } from 'node:fs';
import { chmod, link, mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
} from '@boxd/api';
import type { StoreContext } from './context.js';
import { Digester, parseDigest } from './digest.js';
import { storedLabels } from './labels.js';
import { hashFile, isErrno, removeTree, statFile, syncDir } from './fsutil.js';
import type { LockHolder } from './locks.js';
import { nowNs, type IngestRecord } from './records.js';

export interface IngestStatus {
  ref: string;
  offset: bigint;
  total: bigint;
  expected: string;
  startedAt: bigint;
  updatedAt: bigint;
}

export interface WriterOptions {
  ref: string;
  /** Expected size; 0 = unknown. */
  total: bigint;
  /** Expected digest; empty = unknown. */
  expected: string;
}

type State = 'open' | 'committed' | 'closed' | 'aborted';

// O_APPEND keeps "file size == offset" true after a truncate, with no seeking.
const APPEND = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND;

/**
 * Written bytes not yet being flushed, past which a datasync starts in the background. The
 * commit's fsync then finds little left to write: on the bench disk it took ~40 ms for an
 * 85 MB layer, while the client waited for the commit before sending the next blob.
 */
const FLUSH_AHEAD_BYTES = 8 << 20;

export class IngestWriter implements LockHolder {
  private state: State = 'open';
  private closing: Promise<void> | undefined;
  private inFlight: Promise<void> | undefined;
  private unflushed = 0;
  /** The background datasync, if one runs. Every close of the file waits for it first. */
  private flushing: Promise<void> | undefined;
  /** What a background datasync failed with: the error is reported once per open file, so the commit must see it here. */
  private flushError: unknown;

  private constructor(
    private readonly ctx: StoreContext,
    private readonly key: string,
    private record: IngestRecord,
    private file: FileHandle,
    private readonly digester: Digester,
    private written: bigint,
  ) {}

  /** Opens (or resumes) the ingest for `options.ref`; the caller must hold its lock. */
  static async open(ctx: StoreContext, options: WriterOptions): Promise<IngestWriter> {
    const key = ctx.layout.ingestKey(options.ref);
    const existing = ctx.db.ingests.get(key);
    const writer =
      existing?.ref === options.ref ? await IngestWriter.resume(ctx, key, existing) : undefined;
    if (writer) {
      writer.setTotal(options.total);
      writer.expect(options.expected);
      return writer;
    }
    return IngestWriter.start(ctx, key, options);
  }

  private static async start(ctx: StoreContext, key: string, options: WriterOptions): Promise<IngestWriter> {
    await mkdir(ctx.layout.ingestPath(key), { recursive: true });
    const file = await open(ctx.layout.ingestDataPath(key), APPEND | constants.O_TRUNC, 0o644);
    const now = nowNs();
    const record: IngestRecord = { ref: options.ref, total: options.total, expected: options.expected, startedAt: now, updatedAt: now };
    try {
      await ctx.db.ingests.put(key, record);
    } catch (err) {
      await file.close();
      throw err;
    }
    return new IngestWriter(ctx, key, record, file, new Digester(), 0n);
  }

  /** Undefined when the data file is gone: the ingest then starts over. */
  private static async resume(ctx: StoreContext, key: string, record: IngestRecord): Promise<IngestWriter | undefined> {
    const path = ctx.layout.ingestDataPath(key);
    if (!(await statFile(path))) return undefined;
    const digester = new Digester();
    // The running hash is not persisted: re-reading the bytes on disk is the
    // only state that is certainly consistent with them after a crash.
    const written = await hashFile(path, digester);
    const file = await open(path, APPEND);
    return new IngestWriter(ctx, key, { ...record }, file, digester, written);
  }

  get ref(): string {
    return this.record.ref;
  }

  get offset(): bigint {
    return this.written;
  }

  status(): IngestStatus {
    const { ref, total, expected, startedAt, updatedAt } = this.record;
    return { ref, offset: this.written, total, expected, startedAt, updatedAt };
  }

  digest(): string {
    return this.digester.digest();
  }

  /** The latest positive total wins. */
  setTotal(total: bigint): void {
    if (total > 0n) this.record.total = total;
  }

  /** The latest non-empty expected digest wins. */
  expect(expected: string): void {
    if (expected) this.record.expected = expected;
  }

  /**
   * Appends `data`. The bytes go to the file in the background while the
   * caller answers and receives the next message; at most one write is in
   * flight, and its failure surfaces on the next call. The offset counts the
   * bytes accepted; what is certainly on disk is what Status reports (the
   * file's size), which is where a client resumes after a crash.
   */
  async write(data: Uint8Array): Promise<void> {
    this.ensureOpen();
    await this.flush();
    if (this.unflushed >= FLUSH_AHEAD_BYTES && !this.flushing) this.flushAhead();
    const writing = writeFully(this.file, data);
    writing.catch(() => undefined); // observed by the next flush()
    this.inFlight = writing;
    this.digester.update(data);
    this.unflushed += data.length;
    this.written += BigInt(data.length);
    this.record.updatedAt = nowNs();
  }

  /** Starts writing back what the file holds so far, without waiting for it. */
  private flushAhead(): void {
    this.unflushed = 0;
    this.flushing = this.file.datasync().then(
      () => undefined,
      (err: unknown) => {
        this.flushError ??= err;
      },
    );
    void this.flushing.then(() => (this.flushing = undefined));
  }

  /**
   * Resolves once no write or datasync is in flight (whatever its outcome), so the file holds
   * every accepted byte that could be written and may be closed.
   */
  async settle(): Promise<void> {
    await this.inFlight?.catch((err) => this.ctx.logger.warn({ err, ref: this.ref }, 'ingest write failed'));
    await this.flushing;
  }

  /** Waits for the write in flight; a failed write breaks the writer. */
  private async flush(): Promise<void> {
    try {
      await this.inFlight;
    } catch (err) {
      this.state = 'closed';
      await this.flushing;
      await this.file.close().catch(() => undefined);
      throw err;
    } finally {
      this.inFlight = undefined;
    }
  }

  async truncate(): Promise<void> {
    this.ensureOpen();
    await this.flush();
    await this.flushing;
    await this.file.truncate(0);
    this.digester.reset();
    this.unflushed = 0;
    this.written = 0n;
    this.record.updatedAt = nowNs();
  }

  /** Verifies size and digest, then publishes the bytes under their digest. Returns the digest. */
  async commit(commitLabels: Record<string, string>): Promise<string> {
    this.ensureOpen();
    const labels = storedLabels(commitLabels);
    const { total, expected } = this.record;
    if (total > 0n && total !== this.written) {
      throw new FailedPreconditionError(`unexpected commit size ${this.written}, expected ${total}`);
    }
    const digest = this.digester.digest();
    if (expected && expected !== digest) {
      throw new FailedPreconditionError(`unexpected commit digest ${digest}, expected ${expected}`);
    }

    await this.flush();
    // From here on the writer cannot go back to writing, whatever happens.
    this.state = 'closed';
    await this.flushing;
    try {
      if (this.flushError) throw this.flushError;
      await this.file.sync();
    } finally {
      await this.file.close();
    }
    await this.publish(digest, labels);
    this.state = 'committed';
    return digest;
  }

  private async publish(digest: string, labels: Record<string, string>): Promise<void> {
    const { layout, db } = this.ctx;
    const target = layout.blobPath(parseDigest(digest));
    await mkdir(dirname(target), { recursive: true });
    await db.ingests.put(this.key, { ...this.record, committing: { digest, labels } });
    try {
      // link, unlike rename, refuses to replace an existing blob.
      await link(layout.ingestDataPath(this.key), target);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) {
        await db.ingests.put(this.key, this.record);
        throw err;
      }
      await this.removeIngest();
      throw new AlreadyExistsError(`content ${digest}`);
    }
    await chmod(target, 0o444);
    await syncDir(dirname(target));
    const now = nowNs();
    await db.transaction(() => {
      db.blobs.put(digest, { size: this.written, createdAt: now, updatedAt: now, labels });
      db.ingests.remove(this.key);
    });
    await removeTree(layout.ingestPath(this.key));
    this.ctx.logger.debug({ ref: this.ref, digest, size: this.written.toString() }, 'committed');
  }

  /** Drops the ingest (record and bytes); the writer is unusable afterwards. */
  async discard(): Promise<void> {
    await this.invalidate();
    await this.removeIngest();
  }

  private async removeIngest(): Promise<void> {
    await this.ctx.db.ingests.remove(this.key);
    await removeTree(this.ctx.layout.ingestPath(this.key));
  }

  /** The ingest was aborted by someone else: stop using the file, keep the lock until close. */
  async invalidate(): Promise<void> {
    const wasOpen = this.state === 'open';
    // Marked first, so no operation of the session starts on the file meanwhile.
    if (this.state !== 'committed') this.state = 'aborted';
    if (wasOpen) {
      await this.settle();
      await this.file.close();
    }
  }

  /**
   * Ends the session: persists the ingest's state for a later resume and
   * releases the lock. Idempotent: the store closing and the session ending
   * may both call it, and both wait for the same work.
   */
  close(): Promise<void> {
    return (this.closing ??= this.finish());
  }

  private async finish(): Promise<void> {
    try {
      if (this.state === 'open') {
        this.state = 'closed';
        await this.settle();
        await this.file.close();
        await this.ctx.db.ingests.put(this.key, this.record);
      }
    } finally {
      this.ctx.locks.release(this.record.ref, this);
    }
  }

  private ensureOpen(): void {
    if (this.state === 'aborted') throw new NotFoundError(`ingest ref ${JSON.stringify(this.record.ref)} was aborted`);
    if (this.state !== 'open') throw new FailedPreconditionError('cannot write on closed writer');
  }
}

async function writeFully(file: FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done);
    done += bytesWritten;
  }
}
