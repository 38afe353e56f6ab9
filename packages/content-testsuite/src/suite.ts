/**
 * A conformance suite for any endpoint serving containerd.services.content.v1.Content:
 * boxd's content store (over ttrpc or gRPC), upstream containerd's own content
 * service, or a third party's. It registers vitest `describe`/`it` blocks.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { SuiteEnv, type ContentClient } from './helpers.js';
import { blobCases } from './cases/blobs.js';
import { ingestCases } from './cases/ingest.js';
import { commitCases } from './cases/commit.js';
import { labelCases } from './cases/labels.js';
import { listCases } from './cases/list.js';
import { readCases, type ReadOffsets } from './cases/read.js';
import { statusCases } from './cases/statuses.js';

export interface ContentSuiteOptions {
  /** Shown in the describe block, e.g. "boxd over ttrpc". */
  name: string;
  /**
   * Returns a client. Called once before the tests, and again by tests that
   * need a connection of their own to drop.
   */
  connect: () => Promise<ContentClient> | ContentClient;
  /**
   * Drops a client's connection. Over gRPC cancelling a stream is enough for
   * the server to see it end, but ttrpc has no cancel frame: there a client
   * "goes away" only when its connection closes, so pass this for ttrpc.
   */
  disconnect?: (client: ContentClient) => Promise<void> | void;
  /** containerd namespace sent with every call (required by upstream containerd's own socket). */
  namespace?: string;
  /**
   * Extra headers on every call. Against upstream containerd pass a
   * `containerd-lease`, or its garbage collector removes the suite's blobs
   * (unreferenced content) while the tests still use them.
   */
  metadata?: Record<string, string>;
  /** Called once after the tests (after the suite removed what it created). */
  cleanup?: () => Promise<void> | void;
  /** Size of the large streamed blob (default 64 MiB). */
  largeBlobSize?: number;
  /** What the server reports as the offset of Read chunks (default: accept either). */
  readOffsets?: ReadOffsets;
}

export function runContentSuite(options: ContentSuiteOptions): void {
  describe(`content conformance: ${options.name}`, () => {
    const env = new SuiteEnv(options);

    beforeAll(async () => {
      env.client = await env.connect();
    });

    afterAll(async () => {
      try {
        await env.removeLeftovers();
      } finally {
        await options.cleanup?.();
      }
    });

    blobCases(env, options.largeBlobSize ?? 64 << 20);
    readCases(env, options.readOffsets ?? 'either');
    ingestCases(env);
    commitCases(env);
    labelCases(env);
    listCases(env);
    statusCases(env);
  });
}
