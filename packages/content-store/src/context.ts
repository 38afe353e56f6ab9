import type { Logger } from '@boxd/plugin-kit';
import type { StoreLayout } from './layout.js';
import type { RefLocks } from './locks.js';
import type { RecordDb } from './records.js';

/** What the store's parts share: paths, records, writer locks and the logger. */
export interface StoreContext {
  readonly layout: StoreLayout;
  readonly db: RecordDb;
  readonly locks: RefLocks;
  readonly logger: Logger;
}
