/**
 * A blob's bytes for Apply: read straight from its file when the content
 * store named one (boxd.content.v1.BlobFiles) and this process can open it,
 * else streamed over the socket with Content.Read.
 *
 * The file is looked up by the thread that hands out the job and travels in
 * it: a worker that only reads files never loads the protobuf codecs, whose
 * reflection heap makes V8 collect far more often while layers stream
 * through (measured: ~30 instead of ~4 full GCs over the bench image).
 */
import { open } from 'node:fs/promises';
import type { ByteStream } from '../streams.js';
import { readBlob } from './read-blob.js';
import type { BlobFile, CallScope, ContentStore } from './store.js';

const READ_SIZE = 1 << 20;

export async function openBlob(store: ContentStore, digest: string, scope: CallScope, file: BlobFile | undefined): Promise<ByteStream> {
  if (file) {
    // Another mount namespace or host: the path means nothing here, so read over the socket.
    const handle = await open(file.path, 'r').catch(() => undefined);
    if (handle) {
      const { size } = await handle.stat({ bigint: true });
      if (size === file.size) return handle.createReadStream({ highWaterMark: READ_SIZE });
      await handle.close();
    }
  }
  return readBlob(await store.client(), digest, scope);
}
