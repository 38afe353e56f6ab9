/**
 * The public Content API, per namespace: blobs and ingests live in the
 * namespace-less content store, the metadata plugin's ContentIndex says
 * which namespace holds what. Ingest refs are mapped to backend refs so two
 * namespaces never share an ingest.
 */
import {
  boxdMetadata,
  content,
  events,
  InvalidArgumentError,
  isAlreadyExists,
  isNotFound,
  namespaceOf,
  UnavailableError,
  type CallContext,
  type CallOptions,
  type Init,
  type ServiceClient,
  type ServiceImplementation,
} from '@boxd/api';
import { receivedWire } from '@boxd/grpc';
import { withWireParts } from '@boxd/ttrpc';
import { forwardOptions, plainOptions } from '../forward.js';
import { BlobCache } from './blob-cache.js';
import { LAYER_HEAD_BYTES } from './unpack-ahead.js';
import type { EventPublisher } from '../events.js';

type Store = ServiceClient<typeof content.ContentService>;
type Index = ServiceClient<typeof boxdMetadata.ContentIndexService>;
type WriteRequest = content.WriteContentRequest;
type WriteResponse = Init<content.WriteContentResponse>;

const { STAT, WRITE, COMMIT } = content.WriteAction;
const writeRequestCodec = content.ContentService.methods.Write.requestType;

/** What unpack-ahead.ts is told of the writes through Write. */
export interface WriteHooks {
  /** The first bytes of a write (its first non-empty chunk). */
  writing(head: Uint8Array): void;
  /** A blob committed; `head`: its first bytes, when this write sent them. */
  committed(digest: string, size: Init<WriteResponse>['offset'], namespace: string, head: Uint8Array | undefined): void;
}

const NO_HOOKS: WriteHooks = { writing: () => undefined, committed: () => undefined };

export function contentService(store: () => Store, index: () => Index, publisher: EventPublisher, hooks: WriteHooks = NO_HOOKS): ServiceImplementation<typeof content.ContentService> {
  const blobs = new BlobCache();
  return {
    Info: (req, ctx) => index().Info(req, forwardOptions(ctx)),
    Update: (req, ctx) => index().Update(req, forwardOptions(ctx)),
    List: (req, ctx) => index().List(req, forwardOptions(ctx)),
    async Delete(req, ctx) {
      await index().Delete(req, forwardOptions(ctx));
      publisher.publish(namespaceOf(ctx) ?? '', '/content/delete', events.ContentDelete, { digest: req.digest });
      return {};
    },
    async *Read(req, ctx) {
      const { info } = await index().Info({ digest: req.digest }, forwardOptions(ctx));
      yield* blobs.read(req, Number(info?.size ?? 0), (r) => store().Read(r, plainOptions(ctx)));
    },
    async Status(req, ctx) {
      const ingest = await index().GetIngest({ ref: req.ref }, forwardOptions(ctx));
      return { status: await backendStatus(store(), ingest, ctx) };
    },
    async ListStatuses(req, ctx) {
      const { ingests } = await index().ListIngests({ filters: req.filters }, forwardOptions(ctx));
      const statuses = [];
      for (const ingest of ingests) {
        const status = await backendStatus(store(), ingest, ctx).catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
        if (status) statuses.push(status);
      }
      return { statuses };
    },
    async Abort(req, ctx) {
      const ingest = await index().AbortIngest({ ref: req.ref }, forwardOptions(ctx));
      await store()
        .Abort({ ref: ingest.backendRef }, plainOptions(ctx))
        .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
      return {};
    },
    Write: (requests, ctx) => write(requests, ctx, store(), index(), hooks),
  };
}

async function backendStatus(store: Store, ingest: boxdMetadata.Ingest, ctx: CallContext): Promise<Init<content.Status>> {
  try {
    const { status } = await store.Status({ ref: ingest.backendRef }, plainOptions(ctx));
    return { ...status, ref: ingest.ref, expected: ingest.expected || status?.expected };
  } catch (err) {
    // Opened in the index but no byte written yet: the store has no ingest.
    if (!isNotFound(err)) throw err;
    return { ref: ingest.ref, startedAt: ingest.startedAt, updatedAt: ingest.startedAt, offset: 0, total: ingest.total, expected: ingest.expected };
  }
}

async function* write(requests: AsyncIterable<WriteRequest>, ctx: CallContext, store: Store, index: Index, hooks: WriteHooks): AsyncGenerator<WriteResponse> {
  const incoming = requests[Symbol.asyncIterator]();
  const first = await incoming.next();
  if (first.done) return;
  const ref = first.value.ref;
  if (!ref) throw new InvalidArgumentError('first message must have a reference');
  const opts = forwardOptions(ctx);
  const opened = await index.OpenIngest({ ref, expected: first.value.expected, total: first.value.total }, opts);
  const backendRef = opened.ingest?.backendRef ?? '';
  let msg: WriteRequest | undefined = first.value;

  if (opened.shared) {
    // The blob is already in the store for another namespace: answer from
    // what it is, and link it on commit, unless the client sends data anyway.
    const expected = first.value.expected;
    const size = opened.sharedSize;
    for (; msg && msg.data.length === 0 && msg.action !== WRITE; msg = await nextMessage(incoming)) {
      if (msg.action === COMMIT) {
        await index.Add({ digest: expected, size, labels: msg.labels, ref }, opts);
        yield { action: COMMIT, offset: size, total: size, digest: expected };
        return;
      }
      yield { action: STAT, offset: size, total: size, digest: expected, startedAt: opened.ingest?.startedAt, updatedAt: opened.ingest?.startedAt };
    }
    if (!msg) return;
  }

  const backend = store.Write(plainOptions(ctx));
  const refField = writeRequestCodec.encode({ ref: backendRef });
  try {
    let lastDigest = '';
    let started = false;
    let head: Uint8Array | undefined;
    for (; msg; msg = await nextMessage(incoming)) {
      if (!started && msg.data.length > 0) {
        started = true;
        hooks.writing(msg.data);
        // A write resumed part way did not send the blob's start. A copy: the chunk's
        // buffer need not live as long as the write.
        if (Number(msg.offset) === 0) head = Buffer.from(msg.data.subarray(0, LAYER_HEAD_BYTES));
      }
      const out = toBackend(msg, backendRef, refField);
      if (msg.action === COMMIT) {
        const committed = await commit(backend, out, msg, { ref, lastDigest, index, opts });
        hooks.committed(committed.digest ?? '', committed.offset, namespaceOf(ctx) ?? '', head);
        yield committed;
        return;
      }
      const { expected } = msg;
      await backend.send(out);
      const res = await backend.recv().catch((err: unknown) => adoptExisting(err, expected, { ref, store, index, ctx, opts }));
      if (!res) throw new UnavailableError('content store ended the write stream');
      lastDigest = res.digest;
      yield res;
    }
  } finally {
    await backend.end().catch(() => undefined);
    backend.cancel();
  }
}

/**
 * The request under the store's ref. One that came in over gRPC goes on as
 * the bytes received with the ref appended (the last occurrence wins), so a
 * 1 MiB chunk is neither re-encoded nor copied on its way through.
 */
function toBackend(msg: WriteRequest, backendRef: string, refField: Uint8Array): Init<WriteRequest> {
  const out = { ...msg, ref: backendRef };
  const wire = receivedWire(msg);
  return wire ? withWireParts(out, [wire, refField]) : out;
}

async function nextMessage(incoming: AsyncIterator<WriteRequest>): Promise<WriteRequest | undefined> {
  const next = await incoming.next();
  return next.done ? undefined : next.value;
}

interface AdoptScope {
  ref: string;
  store: Store;
  index: Index;
  ctx: CallContext;
  opts: CallOptions;
}

/**
 * A message naming an expected digest the store already holds ends the
 * ingest with ALREADY_EXISTS (the store drops it, as upstream does). The
 * blob may be another namespace's: link it into this one, consuming the
 * ingest, so the answer holds here too. Always rethrows `err`.
 */
async function adoptExisting(err: unknown, expected: string, { ref, store, index, ctx, opts }: AdoptScope): Promise<never> {
  if (isAlreadyExists(err) && expected) {
    const { info } = await store.Info({ digest: expected }, plainOptions(ctx));
    await index.Add({ digest: expected, size: info?.size ?? 0, labels: {}, ref }, opts).catch((e) => (isAlreadyExists(e) ? undefined : Promise.reject(e)));
  }
  throw err;
}

interface CommitScope {
  ref: string;
  lastDigest: string;
  index: Index;
  opts: CallOptions;
}

async function commit(
  backend: ReturnType<Store['Write']>,
  out: Init<WriteRequest>,
  msg: WriteRequest,
  { ref, lastDigest, index, opts }: CommitScope,
): Promise<WriteResponse> {
  const digest = msg.expected || (msg.data.length === 0 ? lastDigest : '');
  // Declared first so a GC between the store's commit and Add keeps the blob.
  if (digest) await index.PrepareCommit({ ref, digest, size: msg.total }, opts);
  await backend.send(out);
  let res: content.WriteContentResponse | undefined;
  try {
    res = await backend.recv();
  } catch (err) {
    // Already in the store (another namespace): link it into this one.
    if (!isAlreadyExists(err) || !digest) throw err;
    const { info } = await index.Add({ digest, size: msg.total, labels: msg.labels, ref }, opts);
    return { action: COMMIT, offset: info?.size, total: info?.size, digest };
  }
  if (!res) throw new UnavailableError('content store ended the write stream before committing');
  await index.Add({ digest: res.digest, size: res.offset, labels: msg.labels, ref }, opts);
  return res;
}
