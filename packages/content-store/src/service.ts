/** containerd.services.content.v1.Content served from a ContentStore. */
import { content, InvalidArgumentError, type ServiceImplementation } from '@boxd/api';
import type { ContentStore } from './store.js';
import { infoMessage, statusMessage, toBigInt } from './wire.js';
import { writeSession } from './write-session.js';

/** List responses carry at most this many infos, as upstream's do. */
export const LIST_BATCH_SIZE = 100;

export function contentService(store: ContentStore): ServiceImplementation<typeof content.ContentService> {
  return {
    Info: (req) => ({ info: infoMessage(store.info(req.digest)) }),

    Update: async (req) => {
      if (!req.info) throw new InvalidArgumentError('update needs an info');
      const info = await store.update(req.info.digest, req.info.labels, req.updateMask?.paths ?? []);
      return { info: infoMessage(info) };
    },

    List: async function* (req) {
      const infos = store.list(req.filters);
      for (let i = 0; i < infos.length; i += LIST_BATCH_SIZE) {
        yield { info: infos.slice(i, i + LIST_BATCH_SIZE).map(infoMessage) };
      }
    },

    Delete: async (req) => {
      await store.delete(req.digest);
      return {};
    },

    Read: async function* (req) {
      for await (const chunk of store.read(req.digest, toBigInt(req.offset), toBigInt(req.size))) {
        yield { offset: chunk.offset.toString(), data: chunk.data };
      }
    },

    Status: async (req) => ({ status: statusMessage(await store.status(req.ref)) }),

    ListStatuses: async (req) => ({ statuses: (await store.listStatuses(req.filters)).map(statusMessage) }),

    Write: (requests, ctx) => writeSession(store, requests, ctx.signal),

    Abort: async (req) => {
      await store.abort(req.ref);
      return {};
    },
  };
}
