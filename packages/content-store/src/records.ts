/**
 * The store's metadata in lmdb (values msgpack-encoded by lmdb): one record
 * per committed blob and one per ingest. Every multi-record change is one
 * lmdb transaction, so a crash leaves either the old or the new state.
 */
import { open, type Database, type RootDatabase } from 'lmdb';

/** Timestamps are nanoseconds since the epoch. */
export interface BlobRecord {
  size: bigint;
  createdAt: bigint;
  updatedAt: bigint;
  labels: Record<string, string>;
}

export interface IngestRecord {
  ref: string;
  total: bigint;
  expected: string;
  startedAt: bigint;
  updatedAt: bigint;
  /**
   * Set just before the data file is linked into blobs/: if the process dies
   * before the blob record is written, startup finishes the commit with these
   * labels instead of losing them.
   */
  committing?: { digest: string; labels: Record<string, string> };
}

export class RecordDb {
  readonly blobs: Database<BlobRecord, string>;
  /** Keyed by the ingest key (sha256 of the ref), not the ref: refs may exceed lmdb's key size. */
  readonly ingests: Database<IngestRecord, string>;

  private constructor(private readonly root: RootDatabase) {
    this.blobs = root.openDB<BlobRecord, string>({ name: 'blobs' });
    this.ingests = root.openDB<IngestRecord, string>({ name: 'ingests' });
  }

  static open(path: string): RecordDb {
    return new RecordDb(open({ path, maxDbs: 4 }));
  }

  transaction<T>(fn: () => T): Promise<T> {
    return this.root.transaction(fn);
  }

  close(): Promise<void> {
    return this.root.close();
  }
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
