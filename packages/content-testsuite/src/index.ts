export { runContentSuite, type ContentSuiteOptions } from './suite.js';
export type { ReadOffsets } from './cases/read.js';
export {
  SuiteEnv,
  expectCode,
  randomBlob,
  retryUnavailable,
  sha256,
  num,
  EMPTY_SHA256,
  type Blob,
  type ContentClient,
  type WriteCall,
} from './helpers.js';
