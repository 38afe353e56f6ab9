/** boxd.metadata.v1.Changes */
import Long from 'long';
import { boxdMetadata, type CallContext, type ServiceImplementation } from '@boxd/api';
import type { ChangeFeed } from '../changes.js';

export function changesService(feed: ChangeFeed): ServiceImplementation<typeof boxdMetadata.ChangesService> {
  return {
    async *Watch(_req: boxdMetadata.WatchChangesRequest, ctx: CallContext) {
      const watcher = feed.watch();
      try {
        yield { generation: Long.fromNumber(feed.generation, true), tables: [], rows: [] };
        for (let notice = await watcher.next(ctx.signal); notice; notice = await watcher.next(ctx.signal)) {
          yield { generation: Long.fromNumber(feed.generation, true), ...notice };
        }
      } finally {
        watcher.close();
      }
    },
  };
}
