/**
 * boxd.content.v1.BlobFiles: where a committed blob's file is, for callers
 * on the same host that read it directly instead of over the socket.
 */
import { resolve } from 'node:path';
import { boxdContent, type ServiceImplementation } from '@boxd/api';
import { parseDigest } from './digest.js';
import { StoreLayout } from './layout.js';
import type { ContentStore } from './store.js';

export function blobFilesService(store: ContentStore): ServiceImplementation<typeof boxdContent.BlobFilesService> {
  const layout = new StoreLayout(resolve(store.root));
  return {
    Path(req) {
      // Throws NOT_FOUND for a blob that is not committed.
      const info = store.info(req.digest);
      return { path: layout.blobPath(parseDigest(req.digest)), size: info.size.toString() };
    },
  };
}
