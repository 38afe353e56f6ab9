/**
 * Where Apply reads a blob from: the file the boxd content store names
 * (boxd.content.v1.BlobFiles), or Content.Read from a store that names none
 * (upstream containerd's) or when that file cannot be opened.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ReadStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { cleanupTempDirs, spawnDaemon, tempDir, waitForSocket, type Daemon } from '@boxd/test-utils';
import { openBlob } from '../src/content/open-blob.js';
import { connectContentStore, type ContentStore } from '../src/content/store.js';
import { writeBlob } from '../src/content/write-blob.js';
import { ingest, NAMESPACE, startUpstream, type Upstream } from './harness.js';

const CONTENT_STORE_BIN = fileURLToPath(new URL('../../content-store/dist/bin.js', import.meta.url));
let dir: string;
let daemon: Daemon;
let ours: ContentStore;
let upstream: Upstream;
let theirs: ContentStore;
const bytes = randomBytes(3 << 20);
const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const missing = `sha256:${'2'.repeat(64)}`;

beforeAll(async () => {
  dir = await tempDir('bx-dfo-');
  const address = join(dir, 'content.sock');
  daemon = spawnDaemon(process.execPath, [CONTENT_STORE_BIN, '--address', address, '--root', join(dir, 'content'), '--log-level', 'warn'], join(dir, 'content.log'));
  await waitForSocket(address, 15_000);
  ours = connectContentStore(address, 'ttrpc');
  await writeBlob(await ours.client(), { ref: 'blob', commit: () => ({ digest, size: BigInt(bytes.length), labels: {} }) }, (async function* () { yield bytes; })(), {});
  upstream = await startUpstream(join(dir, 'cd'));
  await ingest(upstream, bytes, 'application/octet-stream');
  theirs = connectContentStore(upstream.cd.address, 'grpc');
});

afterAll(async () => {
  ours?.close();
  theirs?.close();
  await daemon?.stop();
  await upstream?.stop();
  await cleanupTempDirs();
});

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('openBlob', () => {
  it('reads the file the boxd content store names', async () => {
    const file = await ours.blobFile(digest, {});
    expect(file?.size).toBe(BigInt(bytes.length));
    const stream = await openBlob(ours, digest, {}, file);
    expect(stream).toBeInstanceOf(ReadStream);
    expect((await readAll(stream)).equals(bytes)).toBe(true);
  });

  it('reads over the socket from a store that names no files', async () => {
    const scope = { namespace: NAMESPACE };
    expect(await theirs.blobFile(digest, scope)).toBeUndefined();
    const stream = await openBlob(theirs, digest, scope, undefined);
    expect(stream).not.toBeInstanceOf(ReadStream);
    expect((await readAll(stream)).equals(bytes)).toBe(true);
  });

  it('reads over the socket when the named file cannot be opened here', async () => {
    const stream = await openBlob(ours, digest, {}, { path: join(dir, 'elsewhere', 'blob'), size: BigInt(bytes.length) });
    expect(stream).not.toBeInstanceOf(ReadStream);
    expect((await readAll(stream)).equals(bytes)).toBe(true);
  });

  it('is NOT_FOUND for a blob either store lacks', async () => {
    await expect(ours.blobFile(missing, {})).rejects.toMatchObject({ code: Code.NOT_FOUND });
    await expect(readAll(await openBlob(theirs, missing, { namespace: NAMESPACE }, undefined))).rejects.toMatchObject({ code: Code.NOT_FOUND });
  });
});
