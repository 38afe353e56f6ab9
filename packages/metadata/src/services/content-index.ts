/**
 * boxd.metadata.v1.ContentIndex: which blobs and ingests each namespace
 * holds, with their labels. The blobs themselves live in the content store.
 */
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  applyLabelMask,
  boxdMetadata,
  fieldsAdaptor,
  goQuote,
  parseFilters,
  type ServiceImplementation,
} from '@boxd/api';
import { nextSequence, scanKeys, scanPrefix } from '../store/db.js';
import { checkLabels, copyLabels, timestamp, toBigInt, toLong, validateDigest } from '../convert.js';
import type { Metadata } from '../metadata.js';
import type { ContentRecord, IngestRecord, Labels } from '../store/records.js';
import { requireNamespace, scopeOf, type Scope } from '../context.js';
import { checkKey } from './keys.js';
import { batches } from './batches.js';
import { dropContent } from '../store/mutations.js';

export interface ContentIndexOptions {
  /** How long an ingest opened without a lease stays a GC root. */
  ingestExpiryMs: number;
}

export function contentIndexService(meta: Metadata, options: ContentIndexOptions): ServiceImplementation<typeof boxdMetadata.ContentIndexService> {
  const { stores } = meta;

  const loadContent = (ns: string, digest: string): ContentRecord => {
    validateDigest(digest);
    const record = stores.content.get([ns, digest]);
    if (!record) throw new NotFoundError(`content ${digest}`);
    return record;
  };

  const loadIngest = (ns: string, ref: string): IngestRecord => {
    const record = stores.ingests.get([ns, ref]);
    if (!record) throw new NotFoundError(`ingest ${goQuote(ref)}`);
    return record;
  };

  return {
    async Info(req, ctx) {
      const ns = requireNamespace(ctx);
      return { info: infoMessage(req.digest, loadContent(ns, req.digest)) };
    },

    async Update(req, ctx) {
      const ns = requireNamespace(ctx);
      const digest = req.info?.digest ?? '';
      const record = meta.write(() => {
        const current = loadContent(ns, digest);
        const labels = copyLabels(applyLabelMask(current.labels, req.info?.labels, req.updateMask?.paths, `content info ${goQuote(digest)}`));
        checkLabels('info.Labels', labels);
        const updated = { ...current, labels, updatedAt: meta.now() };
        stores.content.putSync([ns, digest], updated);
        return updated;
      });
      return { info: infoMessage(digest, record) };
    },

    async *List(req, ctx) {
      const ns = requireNamespace(ctx);
      const filter = parseFilters(req.filters);
      function* matching() {
        for (const { key, value } of scanPrefix(stores.content, [ns])) {
          const digest = key[1]!;
          if (filter.match(fieldsAdaptor({ digest, size: toBigInt(value.size) }, { labels: value.labels }))) yield infoMessage(digest, value);
        }
      }
      for (const info of batches(matching())) yield { info };
    },

    async Delete(req, ctx) {
      const ns = requireNamespace(ctx);
      meta.write(() => {
        loadContent(ns, req.digest);
        dropContent(stores, ns, req.digest);
      });
      meta.gc.schedule();
      return {};
    },

    async Add(req, ctx) {
      const scope = scopeOf(ctx);
      const digest = validateDigest(req.digest);
      const labels = copyLabels(req.labels);
      checkLabels('info.Labels', labels);
      const { record, existed } = await meta.blobGuard.whenSettled(digest, (deletedMeanwhile) => {
        // Nothing protected this blob (no PrepareCommit) and GC removed it: recording it would dangle.
        if (deletedMeanwhile) throw new UnavailableError(`content ${digest} was garbage collected while being added; write it again`);
        return meta.write(() => recordBlob(scope, digest, toBigInt(req.size), labels, req.ref));
      });
      // The lease attachment and the consumed ingest stay committed either way.
      if (existed) throw new AlreadyExistsError(`content ${digest}`);
      return { info: infoMessage(digest, record) };
    },

    async Locate(req) {
      const digest = validateDigest(req.digest);
      const holders = [...scanPrefix(stores.blobs, [digest])];
      if (holders.length === 0) throw new NotFoundError(`content ${digest}`);
      return { namespaces: holders.map((h) => h.key[1]!), size: toLong(toBigInt(holders[0]!.value)) };
    },

    async OpenIngest(req, ctx) {
      const scope = scopeOf(ctx);
      if (!req.ref) throw new InvalidArgumentError('ref must not be empty');
      const expected = req.expected ? validateDigest(req.expected, 'expected digest') : '';
      // A blob GC is deleting right now must not be reported as shared.
      const result = await meta.blobGuard.whenSettled(expected, () => meta.write(() => {
        checkKey([scope.ns, req.ref]);
        meta.touchNamespace(scope.ns);
        if (expected && stores.content.get([scope.ns, expected])) {
          meta.attachToLease(scope, 'content', expected);
          return { exists: true as const };
        }
        const total = toBigInt(req.total);
        const shared = expected ? sharedSize(expected, total) : undefined;
        const current = stores.ingests.get([scope.ns, req.ref]);
        const ingest: IngestRecord = current
          ? { ...current, expected: expected || current.expected, total: total || current.total }
          : newIngest(scope.ns, req.ref, expected, total, scope.lease);
        if (scope.lease) {
          meta.attachToLease(scope, 'ingests', req.ref);
          ingest.lease = scope.lease;
        }
        stores.ingests.putSync([scope.ns, req.ref], ingest);
        return { exists: false as const, ingest, shared };
      }));
      if (result.exists) throw new AlreadyExistsError(`content ${expected}`);
      return {
        ingest: ingestMessage(req.ref, result.ingest),
        shared: result.shared !== undefined,
        sharedSize: toLong(result.shared ?? 0n),
      };
    },

    async PrepareCommit(req, ctx) {
      const ns = requireNamespace(ctx);
      const digest = validateDigest(req.digest);
      // After this the blob is protected; a delete GC already started finishes first
      // (the commit that follows writes the blob again from the ingest).
      await meta.blobGuard.whenSettled(digest, () =>
        meta.write(() => {
          const ingest = loadIngest(ns, req.ref);
          stores.ingests.putSync([ns, req.ref], { ...ingest, committing: digest });
        }),
      );
      return {};
    },

    async GetIngest(req, ctx) {
      const ns = requireNamespace(ctx);
      return ingestMessage(req.ref, loadIngest(ns, req.ref));
    },

    async ListIngests(req, ctx) {
      const ns = requireNamespace(ctx);
      const filter = parseFilters(req.filters);
      const ingests = [];
      for (const { key, value } of scanPrefix(stores.ingests, [ns])) {
        if (filter.match(fieldsAdaptor({ ref: key[1] }))) ingests.push(ingestMessage(key[1]!, value));
      }
      return { ingests };
    },

    async AbortIngest(req, ctx) {
      const ns = requireNamespace(ctx);
      const ingest = meta.write(() => {
        const current = loadIngest(ns, req.ref);
        stores.ingests.removeSync([ns, req.ref]);
        return current;
      });
      meta.gc.schedule();
      return ingestMessage(req.ref, ingest);
    },
  };

  /** Call inside write(). */
  function recordBlob(scope: Scope, digest: string, size: bigint, labels: Labels, ref: string) {
    meta.touchNamespace(scope.ns);
    if (ref) stores.ingests.removeSync([scope.ns, ref]);
    meta.attachToLease(scope, 'content', digest);
    const current = stores.content.get([scope.ns, digest]);
    if (current) return { record: current, existed: true };
    const now = meta.now();
    const created: ContentRecord = { size, labels, createdAt: now, updatedAt: now };
    stores.content.putSync([scope.ns, digest], created);
    stores.blobs.putSync([digest, scope.ns], size);
    return { record: created, existed: false };
  }

  function newIngest(ns: string, ref: string, expected: string, total: bigint, lease: string | undefined): IngestRecord {
    const now = meta.now();
    const ingest: IngestRecord = { backendRef: `${ns}/${nextSequence(stores, 'ingest')}/${ref}`, expected, total, startedAt: now };
    // Without a lease an ingest protects itself for a while, as upstream's do.
    if (!lease) ingest.expiresAt = now + options.ingestExpiryMs;
    return ingest;
  }

  /** Size of a blob another namespace holds, when the sizes agree ("shared" policy). */
  function sharedSize(digest: string, total: bigint): bigint | undefined {
    for (const key of scanKeys(stores.blobs, [digest])) {
      const size = toBigInt(stores.blobs.get(key));
      if (total === 0n || total === size) return size;
    }
    return undefined;
  }
}

function infoMessage(digest: string, record: ContentRecord) {
  return {
    digest,
    size: toLong(toBigInt(record.size)),
    labels: record.labels,
    createdAt: timestamp(record.createdAt),
    updatedAt: timestamp(record.updatedAt),
  };
}

function ingestMessage(ref: string, ingest: IngestRecord) {
  return {
    ref,
    backendRef: ingest.backendRef,
    expected: ingest.expected,
    total: toLong(toBigInt(ingest.total)),
    startedAt: timestamp(ingest.startedAt),
    expiresAt: ingest.lease || ingest.expiresAt === undefined ? null : timestamp(ingest.expiresAt),
    lease: ingest.lease ?? '',
    committing: ingest.committing ?? '',
  };
}
