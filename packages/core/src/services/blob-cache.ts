/**
 * Small blobs (manifests, indexes, configs) kept in the core by digest. Every image
 * operation reads them again and again, each read a hop to the content store; content
 * is immutable, so a cached copy stays right and a hit costs only the namespace check,
 * which callers still make against the metadata index before every read.
 */
import Long from 'long';
import type { content, Init } from '@boxd/api';

type ReadRequest = content.ReadContentRequest;
type ReadResponse = Init<content.ReadContentResponse>;

export const MAX_CACHED_BLOB = 256 * 1024;
const MAX_CACHED_BYTES = 8 * 1024 * 1024;

export class BlobCache {
  private readonly blobs = new Map<string, Uint8Array>();
  private bytes = 0;

  constructor(
    private readonly maxBlob = MAX_CACHED_BLOB,
    private readonly maxBytes = MAX_CACHED_BYTES,
  ) {}

  get(digest: string): Uint8Array | undefined {
    const blob = this.blobs.get(digest);
    if (blob) {
      // Most recently used last: eviction takes from the front.
      this.blobs.delete(digest);
      this.blobs.set(digest, blob);
    }
    return blob;
  }

  fits(size: number): boolean {
    return size > 0 && size <= this.maxBlob;
  }

  set(digest: string, blob: Uint8Array): void {
    if (!this.fits(blob.length) || this.blobs.has(digest)) return;
    this.blobs.set(digest, blob);
    this.bytes += blob.length;
    for (const [oldest, old] of this.blobs) {
      if (this.bytes <= this.maxBytes) break;
      this.blobs.delete(oldest);
      this.bytes -= old.length;
    }
  }

  delete(digest: string): void {
    const blob = this.blobs.get(digest);
    if (!blob) return;
    this.blobs.delete(digest);
    this.bytes -= blob.length;
  }

  /**
   * A Read served from the cache, filling it on a miss with the whole blob when it is
   * small. `size` is the blob's size from the index; ranges the cache cannot answer
   * exactly (past the end, say) go to the store, which gives the right error.
   */
  async *read(req: ReadRequest, size: number, fromStore: (req: Init<ReadRequest>) => AsyncIterable<ReadResponse>): AsyncGenerator<ReadResponse> {
    let blob = this.get(req.digest);
    if (!blob && this.fits(size)) {
      blob = await collect(fromStore({ digest: req.digest, offset: 0, size: 0 }));
      if (blob.length !== size) {
        blob = undefined;
      } else {
        this.set(req.digest, blob);
      }
    }
    const offset = Number(req.offset);
    const want = Long.fromValue(req.size).isZero() ? (blob?.length ?? 0) - offset : Number(req.size);
    if (!blob || offset < 0 || want < 0 || offset + want > blob.length) {
      yield* fromStore(req);
      return;
    }
    yield { offset: req.offset, data: blob.subarray(offset, offset + want) };
  }
}

async function collect(chunks: AsyncIterable<ReadResponse>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) if (chunk.data) parts.push(chunk.data);
  return Buffer.concat(parts);
}
