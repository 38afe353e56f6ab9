/** The metadata plugin: its stores, services and collector, as plugin-kit starts them. */
import { boxdMetadata, containers, images, leases, namespaces } from '@boxd/api';
import { service, type PluginContext, type PluginInstance, type PluginSpec } from '@boxd/plugin-kit';
import { openStores } from './store/db.js';
import { Metadata } from './metadata.js';
import { parseConfig } from './config.js';
import { connectBackends } from './backends/clients.js';
import { Collector } from './gc/collector.js';
import { namespacesService } from './services/namespaces.js';
import { imagesService } from './services/images.js';
import { containersService } from './services/containers.js';
import { leasesService } from './services/leases.js';
import { contentIndexService } from './services/content-index.js';
import { snapshotIndexService } from './services/snapshot-index.js';
import { gcService } from './services/gc.js';
import { changesService } from './services/changes.js';

export interface MetadataInstance extends PluginInstance {
  metadata: Metadata;
  collector: Collector;
}

export async function setupMetadata(ctx: PluginContext): Promise<MetadataInstance> {
  const config = parseConfig(ctx.config);
  let metadata: Metadata | undefined;
  const stores = openStores(ctx.root, (table, key) => metadata?.noteWrite(table, key));
  metadata = new Metadata(stores);
  const backends = connectBackends(config.content, config.snapshotters);
  const collector = new Collector(
    metadata,
    backends,
    { delayMs: config.gcDelayMs, maxDelayMs: config.gcMaxDelayMs, retiredGraceMs: config.retiredGraceMs, reservationTtlMs: config.keyReservationTtlMs },
    ctx.logger,
  );
  metadata.gc = { schedule: () => collector.schedule(), collect: () => collector.collect(), noteWrite: (table, key) => collector.noteWrite(table, key) };
  // Finish whatever a previous run left half-collected.
  const startup = config.gcStartupDelayMs >= 0 ? setTimeout(() => collector.schedule(), config.gcStartupDelayMs) : undefined;

  return {
    metadata,
    collector,
    services: [
      service(namespaces.NamespacesService, namespacesService(metadata)),
      service(images.ImagesService, imagesService(metadata)),
      service(containers.ContainersService, containersService(metadata)),
      service(leases.LeasesService, leasesService(metadata)),
      service(boxdMetadata.ContentIndexService, contentIndexService(metadata, { ingestExpiryMs: config.ingestExpiryMs })),
      service(boxdMetadata.SnapshotIndexService, snapshotIndexService(metadata, { reservationTtlMs: config.keyReservationTtlMs })),
      service(boxdMetadata.GCService, gcService(collector)),
      service(boxdMetadata.ChangesService, changesService(metadata.changes)),
    ],
    stopping() {
      metadata.changes.close();
    },
    async close() {
      clearTimeout(startup);
      await collector.close();
      backends.close();
      await stores.root.close();
    },
  };
}

export const metadataPlugin: PluginSpec = { name: 'metadata', setup: setupMetadata };
