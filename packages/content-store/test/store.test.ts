/**
 * The store's own behaviour beyond the Content API contract: its files on
 * disk, startup repair, aborts under an active writer, restarts, and the
 * extensions it offers (size filters).
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code, content, isBoxdError } from '@boxd/api';
import { GrpcServer, createGrpcClient } from '@boxd/grpc';
import { createLogger } from '@boxd/plugin-kit';
import { ContentStore, StoreLayout, contentService, parseDigest } from '../src/index.js';
import { RecordDb } from '../src/records.js';
import { run } from '@boxd/test-utils';

const logger = createLogger('content-store-test', 'silent');
const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let root: string;
let store: ContentStore;
let layout: StoreLayout;

beforeEach(async () => {
  root = await mkdtemp('/tmp/bx-st-');
  store = await ContentStore.open(root, logger);
  layout = new StoreLayout(root);
});

afterEach(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

async function reopen(): Promise<void> {
  await store.close();
  store = await ContentStore.open(root, logger);
}

async function commit(data: Buffer, labels: Record<string, string> = {}, ref = `ref-${randomBytes(4).toString('hex')}`): Promise<string> {
  const writer = await store.writer({ ref, total: BigInt(data.length), expected: '' });
  try {
    await writer.write(data);
    return await writer.commit(labels);
  } finally {
    await writer.close();
  }
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: number): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    expect(isBoxdError(err) ? err.code : err).toBe(code);
    return;
  }
  throw new Error(`expected code ${code}, but it succeeded`);
}

async function blobFileDigests(): Promise<string[]> {
  return (await readdir(join(root, 'blobs', 'sha256'))).map((hex) => `sha256:${hex}`).sort();
}

describe('files on disk', () => {
  it('keeps an ingest under ingest/<sha256 of ref>/data and commits it to a read-only blobs/<alg>/<hex>', async () => {
    const data = randomBytes(70_000);
    const ref = 'layer-on-disk';
    const writer = await store.writer({ ref, total: BigInt(data.length), expected: '' });
    await writer.write(data.subarray(0, 1000));
    // A write is answered with its bytes on their way to the file (one in flight); settle() waits for them.
    await writer.settle();
    const ingestData = join(root, 'ingest', createHash('sha256').update(ref).digest('hex'), 'data');
    expect((await stat(ingestData)).size).toBe(1000);
    await writer.write(data.subarray(1000));
    const digest = await writer.commit({});
    await writer.close();

    const blob = join(root, 'blobs', 'sha256', digest.slice('sha256:'.length));
    expect(sha256(await readFile(blob))).toBe(sha256(data));
    expect((await stat(blob)).mode & 0o777).toBe(0o444);
    await expect(stat(ingestData)).rejects.toThrow(/ENOENT/);
  });

  it('accepts refs far longer than an lmdb key', async () => {
    const ref = `manifest-${'x'.repeat(5000)}`;
    const data = randomBytes(10);
    const writer = await store.writer({ ref, total: 0n, expected: '' });
    await writer.write(data);
    await writer.close();
    expect((await store.status(ref)).offset).toBe(10n);
    expect((await store.listStatuses([])).map((s) => s.ref)).toEqual([ref]);
  });
});

describe('startup repair', () => {
  it('adopts a blob file without a record when its bytes match its name, and removes it otherwise', async () => {
    const good = randomBytes(5000);
    const bad = randomBytes(5000);
    const badName = sha256(randomBytes(10));
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(root, 'blobs', 'sha256', sha256(good).slice(7)), good);
    await writeFile(join(root, 'blobs', 'sha256', badName.slice(7)), bad);
    await reopen();

    expect(store.recovery.adoptedBlobs).toBe(1);
    expect(store.recovery.removedCorruptBlobs).toBe(1);
    const info = store.info(sha256(good));
    expect(info.size).toBe(5000n);
    expect(info.labels).toEqual({});
    await expectCode(() => store.info(badName), Code.NOT_FOUND);
    expect(await blobFileDigests()).toEqual([sha256(good)]);
  });

  it('drops the record of a blob whose file is gone', async () => {
    const digest = await commit(randomBytes(100), { keep: 'no' });
    await unlink(layout.blobPath(parseDigest(digest)));
    await reopen();
    expect(store.recovery.droppedBlobRecords).toBe(1);
    await expectCode(() => store.info(digest), Code.NOT_FOUND);
    expect(store.list([]).map((i) => i.digest)).not.toContain(digest);
  });

  /** Stops the store with an ingest of `data` whose commit was under way (marker written), as a kill -9 would. */
  async function leaveCommitUnderWay(ref: string, data: Buffer, labels: Record<string, string>): Promise<string> {
    const writer = await store.writer({ ref, total: BigInt(data.length), expected: '' });
    await writer.write(data);
    await writer.close();
    await store.close();
    const key = layout.ingestKey(ref);
    const db = RecordDb.open(layout.dbPath);
    await db.ingests.put(key, { ...db.ingests.get(key)!, committing: { digest: sha256(data), labels } });
    await db.close();
    return key;
  }

  it('finishes a commit that died after linking the blob, keeping its labels', async () => {
    const data = randomBytes(3000);
    const digest = sha256(data);
    const ref = 'died-after-link';
    const key = await leaveCommitUnderWay(ref, data, { 'containerd.io/gc.root': 'x' });
    // The state a kill -9 between link() and the final transaction leaves.
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await link(layout.ingestDataPath(key), layout.blobPath(parseDigest(digest)));

    store = await ContentStore.open(root, logger);
    expect(store.recovery.finishedCommits).toBe(1);
    expect(store.info(digest).labels).toEqual({ 'containerd.io/gc.root': 'x' });
    await expectCode(store.status(ref), Code.NOT_FOUND);
    expect(await blobFileDigests()).toEqual([digest]);
  });

  it('keeps an ingest resumable when its commit died before linking', async () => {
    const data = randomBytes(3000);
    const ref = 'died-before-link';
    await leaveCommitUnderWay(ref, data, {});

    store = await ContentStore.open(root, logger);
    expect((await store.status(ref)).offset).toBe(3000n);
    const resumed = await store.writer({ ref, total: 0n, expected: '' });
    expect(resumed.digest()).toBe(sha256(data));
    expect(await resumed.commit({})).toBe(sha256(data));
    await resumed.close();
  });

  it('removes ingest directories without a record and records without data', async () => {
    const writer = await store.writer({ ref: 'lost-data', total: 0n, expected: '' });
    await writer.write(randomBytes(10));
    await writer.close();
    await store.close();
    await rm(layout.ingestPath(layout.ingestKey('lost-data')), { recursive: true });
    const orphan = join(root, 'ingest', 'f'.repeat(64));
    await mkdir(orphan, { recursive: true });
    await writeFile(join(orphan, 'data'), 'left behind');

    store = await ContentStore.open(root, logger);
    expect(store.recovery.droppedIngests).toBe(1);
    expect(store.recovery.removedIngestDirs).toBe(1);
    await expectCode(store.status('lost-data'), Code.NOT_FOUND);
    await expect(stat(orphan)).rejects.toThrow(/ENOENT/);
  });
});

describe('ingest lifecycle', () => {
  it('resumes an ingest after a restart, re-hashing the bytes on disk', async () => {
    const data = randomBytes(50_000);
    const first = await store.writer({ ref: 'restart', total: BigInt(data.length), expected: sha256(data) });
    await first.write(data.subarray(0, 20_000));
    await first.close();
    await reopen();

    const status = await store.status('restart');
    expect(status).toMatchObject({ ref: 'restart', offset: 20_000n, total: BigInt(data.length), expected: sha256(data) });
    const second = await store.writer({ ref: 'restart', total: 0n, expected: '' });
    expect(second.offset).toBe(20_000n);
    expect(second.digest()).toBe(sha256(data.subarray(0, 20_000)));
    await second.write(data.subarray(20_000));
    expect(await second.commit({})).toBe(sha256(data));
    await second.close();
  });

  it('fails the active writer of an aborted ingest and frees the ref once it ends', async () => {
    const writer = await store.writer({ ref: 'aborted', total: 0n, expected: '' });
    await writer.write(randomBytes(100));
    await store.abort('aborted');
    await expectCode(store.status('aborted'), Code.NOT_FOUND);
    await expectCode(writer.write(randomBytes(10)), Code.NOT_FOUND);
    await expectCode(store.writer({ ref: 'aborted', total: 0n, expected: '' }), Code.UNAVAILABLE);
    await writer.close();
    const fresh = await store.writer({ ref: 'aborted', total: 0n, expected: '' });
    expect(fresh.offset).toBe(0n);
    await fresh.close();
  });

  it('closes while a session is still closing its writer, keeping the ingest', async () => {
    const writer = await store.writer({ ref: 'closing', total: 0n, expected: '' });
    await writer.write(randomBytes(1234));
    await Promise.all([writer.close(), store.close()]);
    store = await ContentStore.open(root, logger);
    expect((await store.status('closing')).offset).toBe(1234n);
  });
});

describe('writes in the background', () => {
  it('commits many writes in order, and Status counts every byte accepted', async () => {
    const chunks = Array.from({ length: 24 }, () => randomBytes(512 * 1024));
    const data = Buffer.concat(chunks);
    const writer = await store.writer({ ref: 'many', total: BigInt(data.length), expected: sha256(data) });
    for (const chunk of chunks) await writer.write(chunk);
    expect((await store.status('many')).offset).toBe(BigInt(data.length));
    const digest = await writer.commit({});
    await writer.close();
    expect(digest).toBe(sha256(data));
    expect(sha256(await readFile(join(root, 'blobs', 'sha256', digest.slice('sha256:'.length))))).toBe(digest);
  });

  it('truncates, closes and resumes while bytes are written back ahead of the commit', async () => {
    // Past 8 MiB a datasync runs in the background; each step below must wait for it.
    const chunks = Array.from({ length: 6 }, () => randomBytes(4 << 20));
    const writer = await store.writer({ ref: 'ahead', total: 0n, expected: '' });
    for (const chunk of chunks) await writer.write(chunk);
    await writer.truncate();
    for (const chunk of chunks.slice(0, 5)) await writer.write(chunk);
    await writer.close();
    expect((await store.status('ahead')).offset).toBe(20n << 20n);

    const resumed = await store.writer({ ref: 'ahead', total: 0n, expected: '' });
    await resumed.write(chunks[5]!);
    const digest = await resumed.commit({});
    await resumed.close();
    expect(digest).toBe(sha256(Buffer.concat(chunks)));
    expect(sha256(await readFile(join(root, 'blobs', 'sha256', digest.slice('sha256:'.length))))).toBe(digest);
  });

  it('fails the writer at the first failed write, leaving only whole leading bytes in the file', async () => {
    // A 1 MiB filesystem under the ingests: the third 512 KiB write runs out of space.
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', layout.ingestDir]);
    try {
      const chunks = Array.from({ length: 4 }, () => randomBytes(512 * 1024));
      const writer = await store.writer({ ref: 'full', total: 0n, expected: '' });
      const outcome = (async () => {
        for (const chunk of chunks) await writer.write(chunk);
        await writer.commit({});
      })();
      await expect(outcome).rejects.toThrow(/ENOSPC/);
      await writer.close();
      const onDisk = await readFile(layout.ingestDataPath(layout.ingestKey('full')));
      expect(onDisk.length).toBeLessThan(3 * 512 * 1024);
      expect(onDisk.equals(Buffer.concat(chunks).subarray(0, onDisk.length))).toBe(true);
    } finally {
      await run('umount', [layout.ingestDir]);
    }
  });
});

describe('labels and filters', () => {
  it('applies concurrent label updates without losing any', async () => {
    const digest = await commit(randomBytes(64));
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.update(digest, { [`k${i}`]: String(i) }, [`labels.k${i}`])));
    expect(Object.keys(store.info(digest).labels)).toHaveLength(40);
  });

  it('filters List on size as well (upstream 1.6 never matches size)', async () => {
    const small = await commit(randomBytes(10), { set: 'size' });
    await commit(randomBytes(20), { set: 'size' });
    expect(store.list(['labels.set==size,size==10']).map((i) => i.digest)).toEqual([small]);
  });
});

describe('over gRPC', () => {
  it('ignores the namespace header: content is namespace-less here', async () => {
    const server = new GrpcServer().addService(content.ContentService, contentService(store));
    const socket = join(root, 'g.sock');
    await server.listen(socket);
    const client = createGrpcClient(content.ContentService, socket);
    try {
      const digest = await commit(randomBytes(32));
      for (const namespace of ['a', 'b', undefined]) {
        const { info } = await client.Info({ digest }, { namespace });
        expect(info?.digest).toBe(digest);
      }
    } finally {
      client.close();
      await server.close();
    }
  });
});
