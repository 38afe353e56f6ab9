/** The content conformance suite against boxd's store, served by plugin-kit over gRPC and over ttrpc. */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { content } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { createLogger, startPlugin, type RunningPlugin } from '@boxd/plugin-kit';
import { connect, createTtrpcClient, type TtrpcClient } from '@boxd/ttrpc';
import { runContentSuite } from '@boxd/content-testsuite';
import { contentStorePlugin } from '../src/index.js';

let dir: string;
let plugin: RunningPlugin;
const closers: Array<() => unknown> = [];
const connections = new WeakMap<object, TtrpcClient>();

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-cs-');
  plugin = await startPlugin(contentStorePlugin, {
    root: join(dir, 'root'),
    address: join(dir, 't.sock'),
    grpcAddress: join(dir, 'g.sock'),
    logger: createLogger('content-store', 'silent'),
  });
});

afterAll(async () => {
  for (const close of closers) await close();
  await plugin?.stop();
  await rm(dir, { recursive: true, force: true });
});

runContentSuite({
  name: 'boxd content-store over gRPC',
  readOffsets: 'absolute',
  connect: () => {
    const client = createGrpcClient(content.ContentService, plugin.grpcAddress!);
    closers.push(() => client.close());
    return client;
  },
});

runContentSuite({
  name: 'boxd content-store over ttrpc',
  readOffsets: 'absolute',
  connect: async () => {
    const connection: TtrpcClient = await connect(plugin.address!);
    closers.push(() => connection.close());
    const client = createTtrpcClient(content.ContentService, connection);
    connections.set(client, connection);
    return client;
  },
  disconnect: (client) => connections.get(client)?.close(),
});
