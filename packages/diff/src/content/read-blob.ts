import { DataLossError } from '@boxd/api';
import { contentCallOptions, type CallScope, type ContentClient } from './store.js';

/** The bytes of a blob, streamed in the chunks the content store sends. */
export async function* readBlob(client: ContentClient, digest: string, scope: CallScope): AsyncGenerator<Buffer> {
  let expectedOffset = 0n;
  for await (const chunk of client.Read({ digest }, contentCallOptions(scope))) {
    const offset = BigInt(chunk.offset.toString());
    // A store that skips or repeats bytes would corrupt the layer silently.
    if (offset !== expectedOffset) {
      throw new DataLossError(`content ${digest}: read chunk at offset ${offset}, expected ${expectedOffset}`);
    }
    expectedOffset += BigInt(chunk.data.length);
    yield Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
  }
}
