/**
 * The Write rpc: one bidirectional stream drives one ingest.
 *
 * The first message names the ref and opens (or resumes) the ingest; then
 * every message gets exactly one response carrying the current offset:
 * STAT reports, WRITE appends (at the current offset, or from 0 to start
 * over), COMMIT verifies and publishes, after which the stream ends. A client
 * that half-closes without committing leaves the ingest resumable.
 */
import {
  AlreadyExistsError,
  CancelledError,
  InvalidArgumentError,
  OutOfRangeError,
  content,
  timestampFromNanos,
  type Init,
} from '@boxd/api';
import type { IngestWriter } from './ingest-writer.js';
import type { ContentStore } from './store.js';
import { toBigInt } from './wire.js';

type Request = content.WriteContentRequest;
type Response = Init<content.WriteContentResponse>;
const { STAT, WRITE, COMMIT } = content.WriteAction;

export async function* writeSession(store: ContentStore, requests: AsyncIterable<Request>, signal: AbortSignal): AsyncGenerator<Response> {
  const incoming = requests[Symbol.asyncIterator]();
  const first = await nextRequest(incoming, signal);
  if (!first) return;
  if (!first.ref) throw new InvalidArgumentError('first message must have a reference');
  const writer = await store.writer({ ref: first.ref, total: toBigInt(first.total), expected: first.expected });
  try {
    for (let request: Request | undefined = first; request; request = await nextRequest(incoming, signal)) {
      yield await handle(store, writer, request);
      if (request.action === COMMIT) return;
    }
  } finally {
    await writer.close();
  }
}

async function handle(store: ContentStore, writer: IngestWriter, request: Request): Promise<Response> {
  if (request.expected) {
    if (store.hasBlob(request.expected)) {
      await writer.discard();
      throw new AlreadyExistsError(`content ${request.expected}`);
    }
    writer.expect(request.expected);
  }
  writer.setTotal(toBigInt(request.total));

  let digest: string | undefined;
  switch (request.action) {
    case STAT:
      break;
    case WRITE:
    case COMMIT: {
      const offset = toBigInt(request.offset);
      if (offset > 0n && offset !== writer.offset) {
        throw new OutOfRangeError(`write @${offset} must occur at current offset ${writer.offset}`);
      }
      if (offset === 0n && writer.offset > 0n) await writer.truncate();
      if (request.data.length > 0) await writer.write(request.data);
      if (request.action === COMMIT) digest = await writer.commit(request.labels);
      break;
    }
    default:
      throw new InvalidArgumentError(`unknown write action ${request.action as number}`);
  }

  const status = writer.status();
  return {
    action: request.action,
    startedAt: timestampFromNanos(status.startedAt),
    updatedAt: timestampFromNanos(status.updatedAt),
    offset: status.offset.toString(),
    total: status.total.toString(),
    digest: digest ?? writer.digest(),
  };
}

/** The next request, or undefined at end of stream; throws once the call is cancelled. */
async function nextRequest(incoming: AsyncIterator<Request>, signal: AbortSignal): Promise<Request | undefined> {
  if (signal.aborted) throw new CancelledError('write stream cancelled');
  let onAbort!: () => void;
  const cancelled = new Promise<never>((_, reject) => {
    onAbort = () => reject(new CancelledError('write stream cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const next = await Promise.race([incoming.next(), cancelled]);
    return next.done ? undefined : next.value;
  } finally {
    signal.removeEventListener('abort', onAbort);
    cancelled.catch(() => undefined);
  }
}
