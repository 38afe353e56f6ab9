import { snapshots } from '@boxd/api';
import { service, type PluginSpec } from '@boxd/plugin-kit';
import { createSnapshotsService } from '@boxd/snapshot-metadata';
import { nativeBackend } from './backend.js';

export function nativePlugin(): PluginSpec {
  return {
    name: 'snapshotter-native',
    async setup({ root, logger }) {
      const handle = await createSnapshotsService({ root, backend: nativeBackend(), logger });
      return {
        services: [service(snapshots.SnapshotsService, handle.implementation)],
        close: () => handle.close(),
      };
    },
  };
}
