/**
 * Startup repair after an unclean stop (kill -9, power cut). The commit and
 * delete paths order their steps so that every intermediate state is one of:
 *
 * - an ingest record marked `committing` whose blob is already linked:
 *   the commit is finished (blob record with the commit's labels);
 * - an ingest record without its data file, or a data directory without a
 *   record: dropped;
 * - a blob record without its file (an interrupted delete): dropped;
 * - a blob file without a record (a crash between link and record, or a file
 *   put there by hand): adopted with a fresh record if its bytes hash to its
 *   name, removed otherwise, so no name ever lies about its content.
 */
import { chmod, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreContext } from './context.js';
import { Digester, isSupportedAlgorithm, parseDigest } from './digest.js';
import { hashFile, isErrno, removeTree, statFile } from './fsutil.js';
import type { IngestRecord } from './records.js';

export interface RecoveryReport {
  finishedCommits: number;
  droppedIngests: number;
  removedIngestDirs: number;
  droppedBlobRecords: number;
  adoptedBlobs: number;
  removedCorruptBlobs: number;
}

export async function recoverStore(ctx: StoreContext): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    finishedCommits: 0,
    droppedIngests: 0,
    removedIngestDirs: 0,
    droppedBlobRecords: 0,
    adoptedBlobs: 0,
    removedCorruptBlobs: 0,
  };
  await recoverIngests(ctx, report);
  await removeOrphanIngestDirs(ctx, report);
  await reconcileBlobs(ctx, report);
  if (Object.values(report).some((n) => n > 0)) ctx.logger.warn({ recovery: report }, 'repaired the store after an unclean stop');
  return report;
}

async function recoverIngests(ctx: StoreContext, report: RecoveryReport): Promise<void> {
  const { db, layout } = ctx;
  for (const { key, value } of [...db.ingests.getRange()]) {
    if (value.committing) {
      await recoverCommit(ctx, key, value, report);
    } else if (!(await statFile(layout.ingestDataPath(key)))) {
      await db.ingests.remove(key);
      await removeTree(layout.ingestPath(key));
      report.droppedIngests++;
    }
  }
}

async function recoverCommit(ctx: StoreContext, key: string, record: IngestRecord, report: RecoveryReport): Promise<void> {
  const { db, layout } = ctx;
  const { digest, labels } = record.committing!;
  const blob = await statFile(layout.blobPath(parseDigest(digest)));
  if (!blob) {
    // Died before the link: the ingest is still whole and resumable.
    const { committing: _, ...rest } = record;
    await db.ingests.put(key, rest);
    return;
  }
  await db.transaction(() => {
    if (!db.blobs.get(digest)) db.blobs.put(digest, { size: blob.size, createdAt: blob.mtimeNs, updatedAt: blob.mtimeNs, labels });
    db.ingests.remove(key);
  });
  await removeTree(layout.ingestPath(key));
  report.finishedCommits++;
}

async function removeOrphanIngestDirs(ctx: StoreContext, report: RecoveryReport): Promise<void> {
  for (const name of await readdir(ctx.layout.ingestDir)) {
    if (ctx.db.ingests.get(name)) continue;
    await removeTree(join(ctx.layout.ingestDir, name));
    report.removedIngestDirs++;
  }
}

async function reconcileBlobs(ctx: StoreContext, report: RecoveryReport): Promise<void> {
  const { db, layout, logger } = ctx;
  const onDisk = new Set<string>();
  for (const algorithm of await readdir(layout.blobsDir)) {
    if (!isSupportedAlgorithm(algorithm)) continue;
    for (const hex of await readdir(join(layout.blobsDir, algorithm))) onDisk.add(`${algorithm}:${hex}`);
  }
  for (const { key } of [...db.blobs.getRange()]) {
    if (onDisk.delete(key)) continue;
    await db.blobs.remove(key);
    report.droppedBlobRecords++;
  }
  for (const name of onDisk) {
    let digest;
    try {
      digest = parseDigest(name);
    } catch {
      logger.warn({ file: name }, 'ignoring a file in blobs/ whose name is not a digest');
      continue;
    }
    const path = layout.blobPath(digest);
    const digester = new Digester(digest.algorithm);
    const size = await hashFile(path, digester);
    if (digester.digest() !== digest.value) {
      await unlink(path).catch((err) => {
        if (!isErrno(err, 'ENOENT')) throw err;
      });
      logger.warn({ digest: digest.value }, 'removed a blob whose bytes do not match its name');
      report.removedCorruptBlobs++;
      continue;
    }
    const { mtimeNs } = (await statFile(path))!;
    await chmod(path, 0o444);
    await db.blobs.put(digest.value, { size, createdAt: mtimeNs, updatedAt: mtimeNs, labels: {} });
    report.adoptedBlobs++;
  }
}
