/** boxd.metadata.v1.GC */
import { boxdMetadata, type ServiceImplementation } from '@boxd/api';
import type { Collector } from '../gc/collector.js';
import { toLong } from '../convert.js';

export function gcService(collector: Collector): ServiceImplementation<typeof boxdMetadata.GCService> {
  return {
    async Collect() {
      const stats = await collector.collect({ full: true });
      return {
        content: stats.content,
        ingests: stats.ingests,
        snapshots: stats.snapshots,
        leases: stats.leases,
        blobsDeleted: stats.blobsDeleted,
        ingestsAborted: stats.ingestsAborted,
        backendSnapshotsRemoved: stats.snapshotsRemoved,
        durationNs: toLong(stats.durationNs),
        errors: stats.errors,
      };
    },
  };
}
