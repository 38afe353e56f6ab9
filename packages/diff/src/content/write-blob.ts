import { content, FailedPreconditionError, isAlreadyExists, type BidiStreamCall } from '@boxd/api';
import { contentCallOptions, type CallScope, type ContentClient } from './store.js';

// Below ttrpc's 4 MiB frame limit and gRPC's 16 MiB message limit.
const CHUNK = 1 << 20;

export interface BlobToWrite {
  ref: string;
  /** Called once all data was sent: what the commit must match, and the labels the blob gets. */
  commit(): { digest: string; size: bigint; labels: Record<string, string> };
}

type WriteCall = BidiStreamCall<content.WriteContentRequest, content.WriteContentResponse>;

async function exchange(call: WriteCall, request: Parameters<WriteCall['send']>[0]): Promise<content.WriteContentResponse> {
  await call.send(request);
  const response = await call.recv();
  if (!response) throw new FailedPreconditionError('content write stream ended early');
  return response;
}

function* slices(chunk: Buffer): Generator<Buffer> {
  for (let at = 0; at < chunk.length; at += CHUNK) yield chunk.subarray(at, at + CHUNK);
}

/**
 * Streams `data` into the content store under `blob.ref` and commits it.
 * A blob that already exists is fine: it only gets the labels.
 */
export async function writeBlob(client: ContentClient, blob: BlobToWrite, data: AsyncIterable<Buffer>, scope: CallScope): Promise<{ digest: string; size: bigint }> {
  const call = client.Write(contentCallOptions(scope));
  let committed: ReturnType<BlobToWrite['commit']> | undefined;
  try {
    await exchange(call, { action: content.WriteAction.STAT, ref: blob.ref });
    let offset = 0n;
    for await (const chunk of data) {
      for (const piece of slices(chunk)) {
        const response = await exchange(call, { action: content.WriteAction.WRITE, ref: blob.ref, offset: offset.toString(), data: piece });
        offset += BigInt(piece.length);
        if (BigInt(response.offset.toString()) !== offset) {
          throw new FailedPreconditionError(`content write ${blob.ref}: store is at offset ${response.offset}, expected ${offset}`);
        }
      }
    }
    committed = blob.commit();
    await exchange(call, {
      action: content.WriteAction.COMMIT,
      ref: blob.ref,
      offset: offset.toString(),
      total: committed.size.toString(),
      expected: committed.digest,
      labels: committed.labels,
    });
    await call.end();
    while ((await call.recv()) !== undefined);
    return { digest: committed.digest, size: committed.size };
  } catch (err) {
    call.cancel();
    if (!committed || !isAlreadyExists(err)) throw err;
    await labelExisting(client, committed.digest, committed.labels, scope);
    return { digest: committed.digest, size: committed.size };
  }
}

async function labelExisting(client: ContentClient, digest: string, labels: Record<string, string>, scope: CallScope): Promise<void> {
  const paths = Object.keys(labels).map((key) => `labels.${key}`);
  if (paths.length === 0) return;
  await client.Update({ info: { digest, labels }, updateMask: { paths } }, contentCallOptions(scope));
}
