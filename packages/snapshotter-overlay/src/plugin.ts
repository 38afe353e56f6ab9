import { snapshots } from '@boxd/api';
import { service, type PluginSpec } from '@boxd/plugin-kit';
import { createSnapshotsService } from '@boxd/snapshot-metadata';
import { overlayBackend, type OverlayOptions } from './backend.js';

/** Config: `index_off = true|false` (default: on when the kernel has the option). */
export function overlayPlugin(defaults: OverlayOptions = {}): PluginSpec {
  return {
    name: 'snapshotter-overlay',
    async setup({ root, config, logger }) {
      const indexOff = typeof config.index_off === 'boolean' ? config.index_off : defaults.indexOff;
      const handle = await createSnapshotsService({ root, backend: overlayBackend({ indexOff }), logger });
      return {
        services: [service(snapshots.SnapshotsService, handle.implementation)],
        close: () => handle.close(),
      };
    },
  };
}
