import { boxdContent, content } from '@boxd/api';
import { service, type PluginSpec } from '@boxd/plugin-kit';
import { blobFilesService } from './blob-files.js';
import { contentService } from './service.js';
import { ContentStore } from './store.js';

/** The content-store plugin: the Content service over the blobs and records under `root`. */
export const contentStorePlugin: PluginSpec = {
  name: 'content-store',
  async setup({ root, logger }) {
    const store = await ContentStore.open(root, logger);
    return {
      services: [service(content.ContentService, contentService(store)), service(boxdContent.BlobFilesService, blobFilesService(store))],
      close: () => store.close(),
    };
  },
};
