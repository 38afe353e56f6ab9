/**
 * A writer referencing a digest while GC is deleting that very blob: the
 * writer waits for the delete, and never records a blob that is gone.
 * The content backend here holds its Delete calls until the test lets go.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, NotFoundError, content, type ServiceImplementation } from '@boxd/api';
import { GrpcServer } from '@boxd/grpc';
import { expectCode, inNs, startMetadata, type Harness } from './helpers.js';
import { digestOf } from './backends.js';

let dir: string;
let server: GrpcServer;
let h: Harness;
const blobs = new Map<string, string>();
const deleting: { digest: string; release: () => void }[] = [];

const fileOf = (digest: string) => join(dir, digest.slice(7));
async function putBlob(data: string): Promise<string> {
  const digest = digestOf(Buffer.from(data));
  await writeFile(fileOf(digest), data);
  blobs.set(digest, fileOf(digest));
  return digest;
}

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-race-');
  const impl: Partial<ServiceImplementation<typeof content.ContentService>> = {
    async *List() {
      yield { info: [...blobs.keys()].map((digest) => ({ digest, size: 1 })) };
    },
    async Delete(req) {
      if (!blobs.has(req.digest)) throw new NotFoundError(`content ${req.digest}`);
      await new Promise<void>((release) => deleting.push({ digest: req.digest, release }));
      blobs.delete(req.digest);
      await unlink(fileOf(req.digest));
      return {};
    },
    async ListStatuses() {
      return { statuses: [] };
    },
  };
  server = new GrpcServer().addService(content.ContentService, impl as ServiceImplementation<typeof content.ContentService>);
  await server.listen(join(dir, 'cs.sock'));
  h = await startMetadata({ content_address: join(dir, 'cs.sock'), transport: 'grpc' });
});
afterAll(async () => {
  // A failed test may leave a delete held; stopping waits for the collection.
  for (const d of deleting) d.release();
  await h.stop();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function deleteStarted(digest: string) {
  while (!deleting.some((d) => d.digest === digest)) await sleep(5);
  return deleting.find((d) => d.digest === digest)!;
}

const settledWithin = async (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true, () => true), sleep(ms).then(() => false)]);

describe('GC racing a writer', () => {
  it('makes an unprotected Add of a blob being deleted fail instead of dangling', async () => {
    const ns = inNs('race');
    const d = await putBlob('orphan that someone adds too late');
    const gc = h.clients.gc.Collect({});
    const del = await deleteStarted(d);
    const add = h.clients.content.Add({ digest: d, size: 1 }, ns);
    expect(await settledWithin(add, 200), 'Add waits for the delete').toBe(false);
    del.release();
    await expectCode(add, Code.UNAVAILABLE, /garbage collected while being added/);
    expect((await gc).blobsDeleted).toBe(1);
    expect(existsSync(fileOf(d))).toBe(false);
    await expectCode(h.clients.content.Info({ digest: d }, ns), Code.NOT_FOUND);
  });

  it('lets PrepareCommit wait for the delete, after which the blob is protected', async () => {
    const ns = inNs('race');
    const d = await putBlob('blob about to be committed again');
    await h.clients.content.OpenIngest({ ref: 'r1' }, ns);
    const gc = h.clients.gc.Collect({});
    const del = await deleteStarted(d);
    const prepare = h.clients.content.PrepareCommit({ ref: 'r1', digest: d }, ns);
    expect(await settledWithin(prepare, 200)).toBe(false);
    del.release();
    await prepare;
    await gc;
    // The commit writes the blob again; from now on GC leaves it alone.
    await putBlob('blob about to be committed again');
    const again = await h.clients.gc.Collect({});
    expect(again.blobsDeleted).toBe(0);
    expect(existsSync(fileOf(d))).toBe(true);
    await h.clients.content.Add({ digest: d, size: 1, ref: 'r1', labels: { 'containerd.io/gc.root': 'kept' } }, ns);
    expect((await h.clients.content.Info({ digest: d }, ns)).info?.digest).toBe(d);
  });

  it('does not report a blob being deleted as shared', async () => {
    const d = await putBlob('shared but going');
    await h.clients.content.Add({ digest: d, size: 1 }, inNs('race-a'));
    await h.clients.content.Delete({ digest: d }, inNs('race-a'));
    const gc = h.clients.gc.Collect({});
    const del = await deleteStarted(d);
    const open = h.clients.content.OpenIngest({ ref: 'r2', expected: d, total: 1 }, inNs('race-b'));
    expect(await settledWithin(open, 200)).toBe(false);
    del.release();
    expect((await open).shared).toBe(false);
    await gc;
  });
});
