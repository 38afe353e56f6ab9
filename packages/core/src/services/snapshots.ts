/**
 * The public Snapshots API, per namespace: the metadata plugin's
 * SnapshotIndex maps client keys to backend keys, the snapshotter named in
 * field 1 holds the data. Removal is the GC's job, as upstream.
 */
import {
  boxdMetadata,
  Code,
  errorCode,
  events,
  namespaceOf,
  NotFoundError,
  snapshots,
  type CallContext,
  type ServiceClient,
  type types,
  type ServiceImplementation,
} from '@boxd/api';
import { forwardOptions, plainOptions } from '../forward.js';
import type { EventPublisher } from '../events.js';
import { BackendKeyPlanner, type BackendPlan } from './backend-key-planner.js';

type Backend = ServiceClient<typeof snapshots.SnapshotsService>;
type Index = ServiceClient<typeof boxdMetadata.SnapshotIndexService>;

/**
 * The mounts of active snapshots and views, by snapshotter and backend key.
 * `ctr run` asks for the mounts of the snapshot it just prepared twice, and the
 * answer never changes while the snapshot lives: a backend key names one
 * snapshot only (the index never hands out a key twice), so an entry can be
 * stale only for a key no client can resolve any more. Bounded, oldest out.
 */
class MountsCache {
  private readonly entries = new Map<string, types.Mount[]>();

  constructor(private readonly limit = 1024) {}

  get(snapshotter: string, key: string): types.Mount[] | undefined {
    return this.entries.get(idOf(snapshotter, key));
  }

  set(snapshotter: string, key: string, mounts: types.Mount[]): void {
    const id = idOf(snapshotter, key);
    this.entries.delete(id);
    this.entries.set(id, mounts);
    if (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value!);
  }

  delete(snapshotter: string, key: string): void {
    this.entries.delete(idOf(snapshotter, key));
  }
}

const idOf = (snapshotter: string, key: string) => `${snapshotter}\0${key}`;

/** The snapshot `what` made in the backend: its mounts. */
async function createIn(target: Backend, kind: 'Prepare' | 'View', snapshotter: string, what: BackendPlan, ctx: CallContext): Promise<types.Mount[]> {
  return (await target[kind]({ snapshotter, key: what.key, parent: what.parent, labels: what.labels }, plainOptions(ctx))).mounts;
}

/** How long taking back a backend snapshot may hold up the answer (not the client's deadline: it may have passed). */
const TAKE_BACK_MS = 30_000;

/** Takes back a backend snapshot no record names; if this fails, GC collects it once its reservation expires. */
async function removeFrom(target: Backend, snapshotter: string, key: string): Promise<void> {
  await target.Remove({ snapshotter, key }, { timeoutMs: TAKE_BACK_MS }).catch(() => undefined);
}

export function snapshotsService(backend: (snapshotter: string) => Backend, index: () => Index, publisher: EventPublisher): ServiceImplementation<typeof snapshots.SnapshotsService> {
  const ns = (ctx: CallContext) => namespaceOf(ctx) ?? '';
  const mountsOf = new MountsCache();
  const planner = new BackendKeyPlanner();
  const backendOf = (name: string) => {
    if (!name) throw new NotFoundError('snapshotter not specified');
    return backend(name);
  };

  async function create(kind: 'Prepare' | 'View', req: snapshots.PrepareSnapshotRequest, ctx: CallContext): Promise<{ mounts: types.Mount[] }> {
    const target = backendOf(req.snapshotter);
    const namespace = ns(ctx);
    const plan = planner.plan(namespace, req.snapshotter, req.key, req.parent, req.labels);
    const reserve = planner.reserveCount(req.snapshotter);
    const record = index()[kind]({ ...req, backendKey: plan?.key ?? '', reserve }, forwardOptions(ctx));
    record.then(
      (answer) => planner.learn(namespace, req.snapshotter, req.parent, reserve, answer),
      () => planner.learn(namespace, req.snapshotter, req.parent, reserve, undefined),
    );
    // Made before the index answered: its mounts, or undefined if it failed.
    const early = plan && createIn(target, kind, req.snapshotter, plan, ctx).catch(() => undefined);
    let planned: boxdMetadata.BackendSnapshot;
    try {
      planned = await record;
    } catch (err) {
      if (plan && (await early)) await removeFrom(target, req.snapshotter, plan.key);
      // Only a reservation the index does not hold fails so: start over without ours.
      if (plan && errorCode(err) === Code.FAILED_PRECONDITION) {
        planner.dropReservations(req.snapshotter);
        return create(kind, req, ctx);
      }
      throw err;
    }
    let mounts = plan && BackendKeyPlanner.matches(plan, planned) ? await early : undefined;
    if (!mounts) {
      // Made from a stale guess, or not made early at all: made now as the index says.
      if (plan) {
        planner.forgetParent(namespace, req.snapshotter, req.parent);
        if (await early) await removeFrom(target, req.snapshotter, plan.key);
      }
      mounts = await createAsRecorded(target, kind, req, planned, ctx);
    }
    mountsOf.set(req.snapshotter, planned.key, mounts);
    publisher.publish(namespace, '/snapshot/prepare', events.SnapshotPrepare, { key: req.key, parent: req.parent });
    return { mounts };
  }

  /** The backend snapshot the index recorded; if it cannot be made, the record goes too. */
  async function createAsRecorded(target: Backend, kind: 'Prepare' | 'View', req: snapshots.PrepareSnapshotRequest, planned: boxdMetadata.BackendSnapshot, ctx: CallContext) {
    try {
      return await createIn(target, kind, req.snapshotter, planned, ctx);
    } catch (err) {
      await index()
        .Remove({ snapshotter: req.snapshotter, key: req.key }, forwardOptions(ctx))
        .catch(() => undefined);
      throw err;
    }
  }

  return {
    Prepare: (req, ctx) => create('Prepare', req, ctx),
    View: (req, ctx) => create('View', req, ctx),
    async Mounts(req, ctx) {
      const target = backendOf(req.snapshotter);
      const resolved = await index().Resolve(req, forwardOptions(ctx));
      const known = mountsOf.get(req.snapshotter, resolved.key);
      if (known) return { mounts: known };
      const res = await target.Mounts({ snapshotter: req.snapshotter, key: resolved.key }, plainOptions(ctx));
      mountsOf.set(req.snapshotter, resolved.key, res.mounts);
      return res;
    },
    async Commit(req, ctx) {
      const target = backendOf(req.snapshotter);
      const planned = await index().Commit(req, forwardOptions(ctx));
      mountsOf.delete(req.snapshotter, planned.key);
      try {
        await target.Commit({ snapshotter: req.snapshotter, name: planned.name, key: planned.key, labels: planned.labels }, plainOptions(ctx));
      } catch (err) {
        await index()
          .AbortCommit(req, forwardOptions(ctx))
          .catch(() => undefined);
        throw err;
      }
      publisher.publish(ns(ctx), '/snapshot/commit', events.SnapshotCommit, { key: req.key, name: req.name });
      return {};
    },
    async Remove(req, ctx) {
      backendOf(req.snapshotter);
      await index().Remove(req, forwardOptions(ctx));
      publisher.publish(ns(ctx), '/snapshot/remove', events.SnapshotRemove, { key: req.key });
      return {};
    },
    async Stat(req, ctx) {
      backendOf(req.snapshotter);
      return index().Stat(req, forwardOptions(ctx));
    },
    async Update(req, ctx) {
      const target = backendOf(req.snapshotter);
      const res = await index().Update(req, forwardOptions(ctx));
      if (res.backendLabelsChanged) {
        await target.Update(
          { snapshotter: req.snapshotter, info: { name: res.backendKey, labels: res.backendLabels }, updateMask: { paths: ['labels'] } },
          plainOptions(ctx),
        );
      }
      return { info: res.info };
    },
    List(req, ctx) {
      backendOf(req.snapshotter);
      return index().List(req, forwardOptions(ctx));
    },
    async Usage(req, ctx) {
      const target = backendOf(req.snapshotter);
      const resolved = await index().Resolve({ snapshotter: req.snapshotter, key: req.key }, forwardOptions(ctx));
      return target.Usage({ snapshotter: req.snapshotter, key: resolved.key }, plainOptions(ctx));
    },
    async Cleanup(req, ctx) {
      return backendOf(req.snapshotter).Cleanup(req, plainOptions(ctx));
    },
  };
}
