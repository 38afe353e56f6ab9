export { ContentStore, READ_CHUNK_SIZE, type ContentInfo, type ReadChunk } from './store.js';
export { IngestWriter, type IngestStatus, type WriterOptions } from './ingest-writer.js';
export { contentService, LIST_BATCH_SIZE } from './service.js';
export { blobFilesService } from './blob-files.js';
export { contentStorePlugin } from './plugin.js';
export { parseDigest, Digester, CANONICAL_ALGORITHM, type Digest } from './digest.js';
export { StoreLayout } from './layout.js';
export type { RecoveryReport } from './recovery.js';
