/**
 * boxd.metadata.v1.SnapshotIndex: per (namespace, snapshotter), client keys
 * mapped to backend keys `<ns>/<seq>/<key>`, with parents, kinds and labels.
 */
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  applyLabelMask,
  boxdMetadata,
  fieldsAdaptor,
  goQuote,
  parseFilters,
  snapshotBackendLabels as backendLabels,
  type ServiceImplementation,
} from '@boxd/api';
import Long from 'long';
import { hasPrefix, scanPrefix } from '../store/db.js';
import { claimReservedKey, newBackendKey, reserveSequences } from './key-reservations.js';
import { checkLabels, copyLabels, timestamp } from '../convert.js';
import type { Metadata } from '../metadata.js';
import { SnapshotKind, type Labels, type SnapshotRecord } from '../store/records.js';
import { requireNamespace, scopeOf, type Scope } from '../context.js';
import { checkKey } from './keys.js';
import { batches } from './batches.js';
import { dropSnapshot, putSnapshot } from '../store/mutations.js';

const KIND_NAMES: Record<number, string> = { [SnapshotKind.VIEW]: 'view', [SnapshotKind.ACTIVE]: 'active', [SnapshotKind.COMMITTED]: 'committed' };

export interface SnapshotIndexOptions {
  /** How long a reserved sequence number stays reserved (see key-reservations.ts). */
  reservationTtlMs: number;
}

export function snapshotIndexService(meta: Metadata, options: SnapshotIndexOptions): ServiceImplementation<typeof boxdMetadata.SnapshotIndexService> {
  const { stores } = meta;

  const load = (ns: string, snapshotter: string, key: string): SnapshotRecord => {
    const record = stores.snapshots.get([ns, snapshotter, key]);
    if (!record) throw new NotFoundError(`snapshot ${key} does not exist`);
    return record;
  };

  const backendView = (ns: string, snapshotter: string, record: SnapshotRecord) => ({
    snapshotter,
    key: record.backendKey,
    parent: record.parent ? load(ns, snapshotter, record.parent).backendKey : '',
    labels: backendLabels(record.labels),
  });

  const put = (scope: Scope, snapshotter: string, key: string, record: SnapshotRecord) => putSnapshot(stores, scope.ns, snapshotter, key, record);
  const drop = (ns: string, snapshotter: string, key: string, record: SnapshotRecord) => dropSnapshot(stores, ns, snapshotter, key, record);

  function create(scope: Scope, req: boxdMetadata.CreateSnapshotRequest, kind: SnapshotKind) {
    requireSnapshotter(req.snapshotter);
    if (!req.key) throw new InvalidArgumentError('snapshot key must not be empty');
    const labels = copyLabels(req.labels);
    checkLabels('info.Labels', labels);
    return meta.write(() => {
      checkKey([scope.ns, req.snapshotter, req.key]);
      if (stores.snapshots.get([scope.ns, req.snapshotter, req.key])) throw new AlreadyExistsError(`snapshot ${goQuote(req.key)}`);
      if (req.parent) {
        const parent = stores.snapshots.get([scope.ns, req.snapshotter, req.parent]);
        if (!parent) throw new NotFoundError(`parent snapshot ${req.parent} does not exist`);
        if (parent.kind !== SnapshotKind.COMMITTED) throw new InvalidArgumentError(`parent snapshot ${goQuote(req.parent)} is not committed`);
      }
      meta.touchNamespace(scope.ns);
      const now = meta.now();
      let backendKey: string;
      if (req.backendKey) {
        claimReservedKey(stores, scope.ns, req.snapshotter, req.key, req.backendKey);
        backendKey = req.backendKey;
      } else backendKey = newBackendKey(stores, scope.ns, req.snapshotter, req.key);
      const record: SnapshotRecord = { backendKey, parent: req.parent, kind, labels, createdAt: now, updatedAt: now };
      put(scope, req.snapshotter, req.key, record);
      meta.attachToLease(scope, `snapshots/${req.snapshotter}`, req.key);
      const reserved = req.reserve ? reserveSequences(stores, req.snapshotter, req.reserve, now) : [];
      return { ...backendView(scope.ns, req.snapshotter, record), reserved: reserved.map((seq) => Long.fromNumber(seq, true)), reservationTtlMs: options.reservationTtlMs };
    });
  }

  return {
    async Prepare(req, ctx) {
      return create(scopeOf(ctx), req, SnapshotKind.ACTIVE);
    },

    async View(req, ctx) {
      return create(scopeOf(ctx), req, SnapshotKind.VIEW);
    },

    async Commit(req, ctx) {
      const scope = scopeOf(ctx);
      requireSnapshotter(req.snapshotter);
      if (!req.name) throw new InvalidArgumentError('snapshot name must not be empty');
      const labels = copyLabels(req.labels);
      checkLabels('info.Labels', labels);
      return meta.write(() => {
        const active = load(scope.ns, req.snapshotter, req.key);
        if (active.kind !== SnapshotKind.ACTIVE) throw new FailedPreconditionError(`snapshot ${goQuote(req.key)} is not active`);
        checkKey([scope.ns, req.snapshotter, req.name]);
        if (stores.snapshots.get([scope.ns, req.snapshotter, req.name])) throw new AlreadyExistsError(`snapshot ${goQuote(req.name)}`);
        meta.touchNamespace(scope.ns);
        const now = meta.now();
        const committed: SnapshotRecord = {
          backendKey: newBackendKey(stores, scope.ns, req.snapshotter, req.name),
          parent: active.parent,
          kind: SnapshotKind.COMMITTED,
          labels,
          createdAt: now,
          updatedAt: now,
        };
        drop(scope.ns, req.snapshotter, req.key, active);
        put(scope, req.snapshotter, req.name, committed);
        // The active key stays protected from GC until the backend has committed it.
        stores.retired.putSync([req.snapshotter, active.backendKey], { ns: scope.ns, key: req.key, name: req.name, record: active, retiredAt: now });
        meta.attachToLease(scope, `snapshots/${req.snapshotter}`, req.name);
        return { snapshotter: req.snapshotter, name: committed.backendKey, key: active.backendKey, labels: backendLabels(labels) };
      });
    },

    async AbortCommit(req, ctx) {
      const ns = requireNamespace(ctx);
      meta.write(() => {
        const retired = [...scanPrefix(stores.retired, [req.snapshotter])].find(
          ({ value }) => value.ns === ns && value.key === req.key && value.name === req.name,
        );
        if (!retired) throw new NotFoundError(`snapshot ${req.key} does not exist`);
        const committed = load(ns, req.snapshotter, req.name);
        if (hasPrefix(stores.snapshotChildren, [ns, req.snapshotter, req.name])) throw new FailedPreconditionError('cannot remove snapshot with child');
        if (stores.snapshots.get([ns, req.snapshotter, req.key])) throw new AlreadyExistsError(`snapshot ${goQuote(req.key)}`);
        drop(ns, req.snapshotter, req.name, committed);
        put({ ns }, req.snapshotter, req.key, retired.value.record);
        stores.retired.removeSync(retired.key);
      });
      meta.gc.schedule();
      return {};
    },

    async Resolve(req, ctx) {
      const ns = requireNamespace(ctx);
      return backendView(ns, req.snapshotter, load(ns, req.snapshotter, req.key));
    },

    async Stat(req, ctx) {
      const ns = requireNamespace(ctx);
      return { info: infoMessage(req.key, load(ns, req.snapshotter, req.key)) };
    },

    async Update(req, ctx) {
      const ns = requireNamespace(ctx);
      const name = req.info?.name ?? '';
      return meta.write(() => {
        const current = load(ns, req.snapshotter, name);
        const labels = copyLabels(applyLabelMask(current.labels, req.info?.labels, req.updateMask?.paths, `snapshot ${goQuote(name)}`));
        checkLabels('info.Labels', labels);
        const updated = { ...current, labels, updatedAt: meta.now() };
        stores.snapshots.putSync([ns, req.snapshotter, name], updated);
        const before = backendLabels(current.labels);
        const after = backendLabels(labels);
        return {
          info: infoMessage(name, updated),
          backendKey: current.backendKey,
          backendLabels: after,
          backendLabelsChanged: !sameLabels(before, after),
        };
      });
    },

    async *List(req, ctx) {
      const ns = requireNamespace(ctx);
      const filter = parseFilters(req.filters);
      function* matching() {
        for (const { key, value } of scanPrefix(stores.snapshots, [ns, req.snapshotter])) {
          const name = key[2]!;
          const adaptor = fieldsAdaptor({ name, parent: value.parent, kind: KIND_NAMES[value.kind] }, { labels: value.labels });
          if (filter.match(adaptor)) yield infoMessage(name, value);
        }
      }
      for (const info of batches(matching())) yield { info };
    },

    async Remove(req, ctx) {
      const ns = requireNamespace(ctx);
      const view = meta.write(() => {
        const record = load(ns, req.snapshotter, req.key);
        if (hasPrefix(stores.snapshotChildren, [ns, req.snapshotter, req.key])) throw new FailedPreconditionError('cannot remove snapshot with child');
        const answer = backendView(ns, req.snapshotter, record);
        drop(ns, req.snapshotter, req.key, record);
        return answer;
      });
      meta.gc.schedule();
      return view;
    },
  };
}

function requireSnapshotter(name: string): void {
  if (!name) throw new InvalidArgumentError('snapshotter argument missing');
}

function sameLabels(a: Labels, b: Labels): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function infoMessage(name: string, record: SnapshotRecord) {
  return {
    name,
    parent: record.parent,
    kind: record.kind,
    labels: record.labels,
    createdAt: timestamp(record.createdAt),
    updatedAt: timestamp(record.updatedAt),
  };
}
