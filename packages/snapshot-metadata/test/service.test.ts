/** The generic Snapshots service on a real gRPC socket. */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Code, isCode, snapshots } from '@boxd/api';
import { GrpcServer, createGrpcClient } from '@boxd/grpc';
import { LIST_BATCH, createSnapshotsService, type SnapshotsServiceHandle } from '../src/index.js';
import { plainBackend } from './plain-backend.js';

let dir = '';
let handle: SnapshotsServiceHandle;
let server: GrpcServer;
let client: ReturnType<typeof createGrpcClient<typeof snapshots.SnapshotsService>>;

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-svc-');
  handle = await createSnapshotsService({ root: join(dir, 'root'), backend: plainBackend() });
  server = new GrpcServer().addService(snapshots.SnapshotsService, handle.implementation);
  await server.listen(join(dir, 'g.sock'));
  client = createGrpcClient(snapshots.SnapshotsService, join(dir, 'g.sock'));
});

afterAll(async () => {
  client?.close();
  await server?.close(1_000);
  await handle?.close();
  await rm(dir, { recursive: true, force: true });
});

it(`List streams snapshots in messages of at most ${LIST_BATCH}`, async () => {
  await client.Prepare({ key: 'base-a' });
  await client.Commit({ name: 'base', key: 'base-a' });
  for (let i = 0; i < 2 * LIST_BATCH + 10; i++) await handle.snapshotter.view(`v${i}`, 'base');
  const sizes: number[] = [];
  for await (const res of client.List({ snapshotter: 'any' })) sizes.push(res.info.length);
  expect(sizes).toEqual([LIST_BATCH, LIST_BATCH, 11]);
});

it('Usage answers exact 64-bit numbers', async () => {
  const usage = await client.Usage({ key: 'base' });
  expect(usage.inodes.toString()).toBe('1');
  expect(BigInt(usage.size.toString())).toBe(handle.snapshotter.stat('base').usage!.size);
});

it('Update needs the snapshot name', async () => {
  await expect(client.Update({ info: { labels: { a: 'b' } } })).rejects.toSatisfy((e) => isCode(e, Code.INVALID_ARGUMENT));
});

it('errors keep containerd wording on the wire', async () => {
  await expect(client.Stat({ key: 'nope' })).rejects.toThrow('snapshot nope does not exist');
  await expect(client.Prepare({ key: 'x', parent: 'nope' })).rejects.toThrow('parent snapshot nope does not exist');
  await expect(client.Prepare({ key: 'base' })).rejects.toThrow('snapshot "base"');
  await expect(client.Mounts({ key: 'base' })).rejects.toThrow('requested snapshot base not active or view');
  await expect(client.Remove({ key: 'base' })).rejects.toThrow('cannot remove snapshot with child');
});
