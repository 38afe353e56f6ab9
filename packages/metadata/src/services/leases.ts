/** containerd.services.leases.v1.Leases */
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  UnimplementedError,
  fieldsAdaptor,
  goQuote,
  leases,
  parseFilters,
  type ServiceImplementation,
} from '@boxd/api';
import { randomBytes, randomInt } from 'node:crypto';
import { scanKeys, scanPrefix } from '../store/db.js';
import { checkLabels, copyLabels, digestError, timestamp } from '../convert.js';
import type { LeaseResourceType, Metadata } from '../metadata.js';
import { requireNamespace } from '../context.js';
import { checkKey } from './keys.js';

export function leasesService(meta: Metadata): ServiceImplementation<typeof leases.LeasesService> {
  const { stores } = meta;

  const requireLease = (ns: string, id: string) => {
    const lease = stores.leases.get([ns, id]);
    if (!lease) throw new NotFoundError(`lease ${goQuote(id)}`);
    return lease;
  };

  return {
    async Create(req, ctx) {
      const ns = requireNamespace(ctx);
      const id = req.id || randomLeaseId();
      const labels = copyLabels(req.labels);
      checkLabels('lease.Labels', labels);
      const createdAt = meta.write(() => {
        checkKey([ns, id]);
        if (stores.leases.get([ns, id])) throw new AlreadyExistsError(`lease ${goQuote(id)}`);
        meta.touchNamespace(ns);
        const now = meta.now();
        stores.leases.putSync([ns, id], { labels, createdAt: now });
        return now;
      });
      return { lease: { id, labels, createdAt: timestamp(createdAt) } };
    },

    async Delete(req, ctx) {
      const ns = requireNamespace(ctx);
      meta.write(() => {
        requireLease(ns, req.id);
        stores.leases.removeSync([ns, req.id]);
        for (const key of [...scanKeys(stores.leaseResources, [ns, req.id])]) stores.leaseResources.removeSync(key);
      });
      if (req.sync) await meta.gc.collect();
      else meta.gc.schedule();
      return {};
    },

    async List(req, ctx) {
      const ns = requireNamespace(ctx);
      const filter = parseFilters(req.filters);
      const out = [];
      for (const { key, value } of scanPrefix(stores.leases, [ns])) {
        const id = key[1]!;
        if (filter.match(fieldsAdaptor({ id }, { labels: value.labels }))) {
          out.push({ id, labels: value.labels, createdAt: timestamp(value.createdAt) });
        }
      }
      return { leases: out };
    },

    async AddResource(req, ctx) {
      const ns = requireNamespace(ctx);
      const { type, id } = parseResource(req.resource);
      meta.write(() => {
        requireLease(ns, req.id);
        checkKey([ns, req.id, type, id]);
        stores.leaseResources.putSync([ns, req.id, type, id], 1);
      });
      return {};
    },

    async DeleteResource(req, ctx) {
      const ns = requireNamespace(ctx);
      const { type, id } = parseResource(req.resource);
      meta.write(() => {
        requireLease(ns, req.id);
        stores.leaseResources.removeSync([ns, req.id, type, id]);
      });
      meta.gc.schedule();
      return {};
    },

    async ListResources(req, ctx) {
      const ns = requireNamespace(ctx);
      requireLease(ns, req.id);
      const resources = [...scanKeys(stores.leaseResources, [ns, req.id])].map((key) => ({ type: key[2]!, id: key[3]! }));
      return { resources };
    },
  };
}

/** The server picks an id when the client sends none: `<ns of the current second>-<4 base64url chars>`, as upstream. */
function randomLeaseId(): string {
  return `${Date.now() % 1000 * 1_000_000 + randomInt(1_000_000)}-${randomBytes(3).toString('base64url')}`;
}

/** Resource types upstream knows: `content`, `ingests`, `snapshots/<snapshotter>`. */
function parseResource(resource: leases.Resource | null | undefined): { type: LeaseResourceType; id: string } {
  const type = resource?.type ?? '';
  const id = resource?.id ?? '';
  const parts = type.split('/');
  switch (parts[0]) {
    case 'content':
    case 'ingests':
      if (parts.length !== 1) throw new InvalidArgumentError(`invalid resource type ${type}`);
      if (parts[0] === 'content') {
        const problem = digestError(id);
        if (problem) throw new InvalidArgumentError(`invalid content resource id ${id}: ${problem}`);
      }
      return { type: parts[0], id };
    case 'snapshots':
      if (parts.length !== 2 || !parts[1]) throw new InvalidArgumentError(`invalid snapshot resource type ${type}`);
      return { type: `snapshots/${parts[1]}`, id };
    default:
      throw new UnimplementedError(`resource type ${type} not supported yet`);
  }
}
