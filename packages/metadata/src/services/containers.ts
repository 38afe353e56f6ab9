/** containerd.services.containers.v1.Containers */
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  applyFieldMask,
  containers,
  fieldsAdaptor,
  goQuote,
  parseFilters,
  validateIdentifier,
  validateLabels,
  type FieldMaskSpec,
  type ServiceImplementation,
} from '@boxd/api';
import { hasPrefix, scanPrefix } from '../store/db.js';
import { anyMessage, anyRecord, copyLabels, timestamp } from '../convert.js';
import type { Metadata } from '../metadata.js';
import type { AnyRecord, ContainerRecord } from '../store/records.js';
import { requireNamespace } from '../context.js';

type ContainerFields = Omit<ContainerRecord, 'createdAt' | 'updatedAt'>;

const CONTAINER_MASK: FieldMaskSpec<ContainerFields> = {
  fields: {
    labels: 'map',
    extensions: 'map',
    spec: 'value',
    image: 'value',
    snapshotkey: { kind: 'value', prop: 'snapshotKey' },
  },
  whenEmpty: ['labels', 'spec', 'extensions', 'image', 'snapshotkey'],
};

export function containersService(meta: Metadata): ServiceImplementation<typeof containers.ContainersService> {
  const { stores } = meta;

  const load = (ns: string, id: string): ContainerRecord => {
    const record = stores.containers.get([ns, id]);
    if (!record) throw new NotFoundError(`container ${goQuote(id)} in namespace ${goQuote(ns)}`);
    return record;
  };

  /** Upstream words "not found" differently when the namespace has no container at all. */
  const loadFor = (verb: 'update' | 'delete', ns: string, id: string): ContainerRecord => {
    const record = stores.containers.get([ns, id]);
    if (record) return record;
    if (!hasPrefix(stores.containers, [ns])) throw new NotFoundError(`cannot ${verb} container ${goQuote(id)} in namespace ${goQuote(ns)}`);
    throw new NotFoundError(verb === 'update' ? `container ${goQuote(id)}` : `container ${id}`);
  };

  function* matching(ns: string, filters: string[]) {
    const filter = parseFilters(filters);
    for (const { key, value } of scanPrefix(stores.containers, [ns])) {
      const adaptor = fieldsAdaptor({ id: key[1], image: value.image, 'runtime.name': value.runtime.name }, { labels: value.labels });
      if (filter.match(adaptor)) yield containerMessage(key[1]!, value);
    }
  }

  return {
    async Get(req, ctx) {
      const ns = requireNamespace(ctx);
      return { container: containerMessage(req.id, load(ns, req.id)) };
    },

    async List(req, ctx) {
      return { containers: [...matching(requireNamespace(ctx), req.filters)] };
    },

    async *ListStream(req, ctx) {
      for (const container of matching(requireNamespace(ctx), req.filters)) yield { container };
    },

    async Create(req, ctx) {
      const ns = requireNamespace(ctx);
      const fields = containerFields(req.container);
      const id = req.container?.id ?? '';
      validateContainer(id, fields, 'create container failed validation');
      const record = meta.write(() => {
        if (stores.containers.get([ns, id])) throw new AlreadyExistsError(`container ${goQuote(id)}`);
        meta.touchNamespace(ns);
        const now = meta.now();
        const created: ContainerRecord = { ...fields, createdAt: now, updatedAt: now };
        stores.containers.putSync([ns, id], created);
        return created;
      });
      return { container: containerMessage(id, record) };
    },

    async Update(req, ctx) {
      const ns = requireNamespace(ctx);
      const id = req.container?.id ?? '';
      if (!id) throw new InvalidArgumentError('Container.ID required');
      const update = containerFields(req.container);
      const paths = req.updateMask?.paths ?? [];
      const record = meta.write(() => {
        const current = loadFor('update', ns, id);
        if (paths.length === 0) {
          if (current.snapshotter !== update.snapshotter) throw new InvalidArgumentError('container.Snapshotter field is immutable');
          if (current.runtime.name !== update.runtime.name) throw new InvalidArgumentError('container.Runtime.Name field is immutable');
        }
        const merged = applyFieldMask<ContainerFields>(current, update, paths, CONTAINER_MASK, goQuote(id));
        const fields: ContainerFields = { ...merged, labels: copyLabels(merged.labels) };
        validateContainer(id, fields, 'update failed validation');
        const updated: ContainerRecord = { ...fields, createdAt: current.createdAt, updatedAt: meta.now() };
        stores.containers.putSync([ns, id], updated);
        return updated;
      });
      return { container: containerMessage(id, record) };
    },

    async Delete(req, ctx) {
      const ns = requireNamespace(ctx);
      meta.write(() => {
        loadFor('delete', ns, req.id);
        stores.containers.removeSync([ns, req.id]);
      });
      meta.gc.schedule();
      return {};
    },
  };
}

function containerFields(c: containers.Container | null | undefined): ContainerFields {
  const extensions: Record<string, AnyRecord> = {};
  for (const [k, v] of Object.entries(c?.extensions ?? {})) extensions[k] = anyRecord(v)!;
  return {
    labels: copyLabels(c?.labels),
    image: c?.image ?? '',
    runtime: { name: c?.runtime?.name ?? '', options: anyRecord(c?.runtime?.options) },
    spec: anyRecord(c?.spec),
    snapshotter: c?.snapshotter ?? '',
    snapshotKey: c?.snapshotKey ?? '',
    extensions,
  };
}

function validateContainer(id: string, c: ContainerFields, context: string): void {
  const fail = (message: string): never => {
    throw new InvalidArgumentError(`${context}: ${message}`);
  };
  const check = (what: string, validate: () => void) => {
    try {
      validate();
    } catch (err) {
      fail(`${what}: ${(err as Error).message}`);
    }
  };
  check('container.ID', () => validateIdentifier(id));
  check('containers.Labels', () => validateLabels(c.labels));
  if (Object.keys(c.extensions).some((k) => k === '')) fail('container.Extension keys must not be zero-length');
  if (!c.runtime.name) fail('container.Runtime.Name must be set');
  if (!c.spec) fail('container.Spec must be set');
  if (c.snapshotKey && !c.snapshotter) fail('container.Snapshotter must be set if container.SnapshotKey is set');
}

function containerMessage(id: string, r: ContainerRecord) {
  return {
    id,
    labels: r.labels,
    image: r.image,
    runtime: { name: r.runtime.name, options: anyMessage(r.runtime.options) },
    spec: anyMessage(r.spec),
    snapshotter: r.snapshotter,
    snapshotKey: r.snapshotKey,
    createdAt: timestamp(r.createdAt),
    updatedAt: timestamp(r.updatedAt),
    extensions: Object.fromEntries(Object.entries(r.extensions).map(([k, v]) => [k, anyMessage(v)!])),
  };
}
