export { metadataPlugin, setupMetadata, type MetadataInstance } from './plugin.js';
export { parseConfig, type MetadataConfig } from './config.js';
export { Metadata } from './metadata.js';
export { Collector, type CollectStats, type CollectorOptions } from './gc/collector.js';
export { mark, leaseExpired, nodeId, type GcNode } from './gc/mark.js';
export { openStores, type Stores } from './store/db.js';
export type * from './store/records.js';
