/**
 * `containerd.services.snapshots.v1.Snapshots` on top of a Snapshotter.
 *
 * The snapshotter name in field 1 of each request is not checked: a process
 * serves one snapshotter, under whatever name its client knows it by. Keys
 * are used as given (upstream containerd's proxy mode sends
 * `<namespace>/<seq>/<key>`), and no namespace is required.
 */
import Long from 'long';
import {
  InvalidArgumentError,
  snapshots,
  timestampFromDate,
  type Init,
  type ServiceImplementation,
} from '@boxd/api';
import type { SnapshotInfo, Usage } from './records.js';
import { Snapshotter, type SnapshotterOptions } from './snapshotter.js';

type SnapshotsService = typeof snapshots.SnapshotsService;

/** List answers in batches of this many snapshots per message, as containerd does. */
export const LIST_BATCH = 100;

export function toProtoInfo(info: SnapshotInfo): Init<snapshots.Info> {
  return {
    name: info.key,
    parent: info.parent,
    kind: info.kind,
    createdAt: timestampFromDate(new Date(info.createdAt)),
    updatedAt: timestampFromDate(new Date(info.updatedAt)),
    labels: info.labels,
  };
}

function toProtoUsage(usage: Usage): Init<snapshots.UsageResponse> {
  return { size: Long.fromString(usage.size.toString()), inodes: Long.fromString(usage.inodes.toString()) };
}

export function snapshotsImplementation(snapshotter: Snapshotter): ServiceImplementation<SnapshotsService> {
  return {
    Prepare: async (req) => ({ mounts: await snapshotter.prepare(req.key, req.parent, req.labels) }),
    View: async (req) => ({ mounts: await snapshotter.view(req.key, req.parent, req.labels) }),
    Mounts: (req) => ({ mounts: snapshotter.mounts(req.key) }),
    Commit: async (req, ctx) => {
      await snapshotter.commit(req.name, req.key, req.labels, ctx.signal);
      return {};
    },
    Remove: async (req) => {
      await snapshotter.remove(req.key);
      return {};
    },
    Stat: (req) => ({ info: toProtoInfo(snapshotter.stat(req.key)) }),
    Update: (req) => {
      if (!req.info?.name) throw new InvalidArgumentError('snapshot name is required for update');
      const info = snapshotter.update(req.info.name, req.info.labels, req.updateMask?.paths ?? []);
      return { info: toProtoInfo(info) };
    },
    List: async function* (req) {
      let batch: Init<snapshots.Info>[] = [];
      for (const info of snapshotter.walk(req.filters)) {
        batch.push(toProtoInfo(info));
        if (batch.length >= LIST_BATCH) {
          yield { info: batch };
          batch = [];
        }
      }
      if (batch.length > 0) yield { info: batch };
    },
    Usage: async (req, ctx) => toProtoUsage(await snapshotter.usage(req.key, ctx.signal)),
    Cleanup: async () => {
      await snapshotter.cleanup();
      return {};
    },
  };
}

export interface SnapshotsServiceHandle {
  snapshotter: Snapshotter;
  implementation: ServiceImplementation<SnapshotsService>;
  close(): Promise<void>;
}

/** Opens the store under `options.root` and serves it with `options.backend`. */
export async function createSnapshotsService(options: SnapshotterOptions): Promise<SnapshotsServiceHandle> {
  const snapshotter = await Snapshotter.open(options);
  return { snapshotter, implementation: snapshotsImplementation(snapshotter), close: () => snapshotter.close() };
}
