/** containerd.services.namespaces.v1.Namespaces: not namespaced itself. */
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  applyLabelMask,
  goQuote,
  namespaces,
  validateIdentifier,
  type ServiceImplementation,
} from '@boxd/api';
import { hasPrefix, scanKeys } from '../store/db.js';
import { checkLabels, copyLabels } from '../convert.js';
import type { Metadata } from '../metadata.js';

export function namespacesService(meta: Metadata): ServiceImplementation<typeof namespaces.NamespacesService> {
  const { stores } = meta;
  const view = (name: string) => ({ name, labels: stores.namespaces.get(name)?.labels ?? {} });

  return {
    // Upstream answers with empty labels for a namespace that does not exist.
    async Get(req) {
      return { namespace: view(req.name) };
    },

    async List() {
      return { namespaces: [...stores.namespaces.getKeys()].map((name) => view(name as string)) };
    },

    async Create(req) {
      const name = req.namespace?.name ?? '';
      validateIdentifier(name);
      const labels = copyLabels(req.namespace?.labels);
      checkLabels('namespace.Labels', labels);
      meta.write(() => {
        if (stores.namespaces.get(name)) throw new AlreadyExistsError(`namespace ${goQuote(name)}`);
        stores.namespaces.putSync(name, { labels, createdAt: meta.now() });
      });
      return { namespace: { name, labels } };
    },

    // Like upstream, updating a namespace that does not exist creates it,
    // and a mask names single labels only (`labels.<k>`).
    async Update(req) {
      const name = req.namespace?.name ?? '';
      for (const path of req.updateMask?.paths ?? []) {
        if (!path.startsWith('labels.')) throw new InvalidArgumentError(`cannot update ${goQuote(path)} field`);
      }
      const labels = meta.write(() => {
        meta.touchNamespace(name);
        const current = stores.namespaces.get(name)!;
        const next = copyLabels(applyLabelMask(current.labels, req.namespace?.labels, req.updateMask?.paths, `namespace ${goQuote(name)}`));
        checkLabels('namespace.Labels', next);
        stores.namespaces.putSync(name, { ...current, labels: next });
        return next;
      });
      return { namespace: { name, labels } };
    },

    async Delete(req) {
      meta.write(() => {
        if (!stores.namespaces.get(req.name)) throw new NotFoundError(`namespace ${goQuote(req.name)}`);
        const kinds = contentKinds(meta, req.name);
        if (kinds.length > 0) {
          throw new FailedPreconditionError(`namespace ${goQuote(req.name)} must be empty, but it still has ${kinds.join(', ')}`);
        }
        stores.namespaces.removeSync(req.name);
        // Leases and ingests do not keep a namespace alive; they go with it.
        for (const key of [...scanKeys(stores.leases, [req.name])]) stores.leases.removeSync(key);
        for (const key of [...scanKeys(stores.leaseResources, [req.name])]) stores.leaseResources.removeSync(key);
        for (const key of [...scanKeys(stores.ingests, [req.name])]) stores.ingests.removeSync(key);
      });
      meta.gc.schedule();
      return {};
    },
  };
}

/** What still lives in a namespace, named as upstream names it. */
function contentKinds(meta: Metadata, ns: string): string[] {
  const { stores } = meta;
  const kinds: string[] = [];
  if (hasPrefix(stores.images, [ns])) kinds.push('images');
  if (hasPrefix(stores.content, [ns])) kinds.push('blobs');
  if (hasPrefix(stores.containers, [ns])) kinds.push('containers');
  const snapshotters = new Set<string>();
  for (const [, snapshotter] of scanKeys(stores.snapshots, [ns])) snapshotters.add(snapshotter!);
  for (const snapshotter of snapshotters) kinds.push(`snapshots on ${goQuote(snapshotter)} snapshotter`);
  return kinds;
}
