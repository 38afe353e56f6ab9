/**
 * The suite against a boxd snapshotter plugin started in this process by
 * plugin-kit, once over its gRPC socket and once over its ttrpc socket.
 * Separate entry point (`@boxd/snapshotter-testsuite/plugin`), so suites for
 * other endpoints do not load boxd's transports.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll } from 'vitest';
import { snapshots } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { startPlugin, type PluginSpec, type RunningPlugin } from '@boxd/plugin-kit';
import { connect, createTtrpcClient } from '@boxd/ttrpc';
import { runSnapshotterSuite, type SnapshotterSuiteOptions } from './suite.js';

export interface PluginSuiteOptions extends Omit<SnapshotterSuiteOptions, 'connect' | 'name' | 'namespace' | 'lease'> {
  /** Shown in the describe titles, with the transport. */
  name: string;
  plugin: PluginSpec;
}

export function runPluginSnapshotterSuites(options: PluginSuiteOptions): void {
  const { plugin, name, ...suite } = options;
  let dir = '';
  let running: RunningPlugin | undefined;
  const closers: (() => unknown)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp('/tmp/bx-sn-');
    running = await startPlugin(plugin, {
      root: `${dir}/root`,
      address: `${dir}/t.sock`,
      grpcAddress: `${dir}/g.sock`,
      logLevel: 'warn',
    });
  });

  afterAll(async () => {
    for (const close of closers) await close();
    await running?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  runSnapshotterSuite({
    ...suite,
    name: `${name} over gRPC`,
    connect: () => {
      const client = createGrpcClient(snapshots.SnapshotsService, `${dir}/g.sock`);
      closers.push(() => client.close());
      return client;
    },
  });

  runSnapshotterSuite({
    ...suite,
    name: `${name} over ttrpc`,
    connect: async () => {
      const conn = await connect(`${dir}/t.sock`);
      closers.push(() => conn.close());
      return createTtrpcClient(snapshots.SnapshotsService, conn);
    },
  });
}
