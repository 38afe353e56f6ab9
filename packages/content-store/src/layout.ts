/**
 * Where things live under the store's root:
 *
 *   blobs/<alg>/<hex>     committed blobs, read-only, named by their digest
 *   ingest/<key>/data     bytes of an ingest in progress (key = sha256 of the ref)
 *   metadata.lmdb         labels, timestamps and ingest state
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Digest } from './digest.js';

export class StoreLayout {
  readonly blobsDir: string;
  readonly ingestDir: string;
  readonly dbPath: string;

  constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs');
    this.ingestDir = join(root, 'ingest');
    this.dbPath = join(root, 'metadata.lmdb');
  }

  blobPath(digest: Digest): string {
    return join(this.blobsDir, digest.algorithm, digest.hex);
  }

  /** Refs are arbitrary strings; their hash makes a safe, bounded directory name. */
  ingestKey(ref: string): string {
    return createHash('sha256').update(ref).digest('hex');
  }

  ingestPath(key: string): string {
    return join(this.ingestDir, key);
  }

  ingestDataPath(key: string): string {
    return join(this.ingestDir, key, 'data');
  }
}
