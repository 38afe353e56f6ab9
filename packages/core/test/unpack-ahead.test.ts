/**
 * Unpacking ahead against the real content-store and diff plugins: a
 * committed layer is staged, so its Apply no longer needs the blob; a diff
 * plugin without the Staging service is asked once.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxdDiff, content, diff } from '@boxd/api';
import { contentStorePlugin } from '@boxd/content-store';
import { diffPlugin } from '@boxd/diff';
import { startPlugin, type RunningPlugin } from '@boxd/plugin-kit';
import { connect, createTtrpcClient, type TtrpcClient } from '@boxd/ttrpc';
import { looksLikeLayer, UnpackAhead } from '../src/services/unpack-ahead.js';

const logger = pino({ level: 'silent' });
let dir: string;
let store: RunningPlugin;
let differ: RunningPlugin;
const connections: TtrpcClient[] = [];
let contentClient: ReturnType<typeof createTtrpcClient<typeof content.ContentService>>;

async function client<S extends Parameters<typeof createTtrpcClient>[0]>(def: S, address: string) {
  const connection = await connect(address);
  connections.push(connection);
  return createTtrpcClient(def, connection);
}

/** A one-file layer tar, made by hand: a ustar header, the data, the end blocks. */
function layerTar(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 'ascii');
  header.write('0000644\0', 100, 'ascii');
  header.write('0000000\0', 108, 'ascii');
  header.write('0000000\0', 116, 'ascii');
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  header.write('14600000000\0', 136, 'ascii');
  header.write('        ', 148, 'ascii');
  header.write('0', 156, 'ascii');
  header.write('ustar\x0000', 257, 'ascii');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-ua-');
  store = await startPlugin(contentStorePlugin, { root: join(dir, 'content'), address: join(dir, 'content.sock'), logger });
  differ = await startPlugin(diffPlugin, { root: join(dir, 'diff'), address: join(dir, 'diff.sock'), config: { content_address: store.address, workers: 1 }, logger });
  contentClient = await client(content.ContentService, store.address!);
});

afterAll(async () => {
  for (const c of connections) await c.close();
  await differ?.stop();
  await store?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function commit(bytes: Buffer): Promise<string> {
  const contentClient = await client(content.ContentService, store.address!);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const write = contentClient.Write();
  await write.send({ action: content.WriteAction.COMMIT, ref: digest, offset: 0, total: bytes.length, expected: digest, data: bytes });
  await write.recv();
  await write.end();
  return digest;
}

describe('UnpackAhead', () => {
  it('has a committed layer staged: its Apply takes the staged tree, even with the blob gone', async () => {
    const tar = layerTar('hello.txt', Buffer.from('unpacked ahead\n'));
    const digest = await commit(tar);
    const staging = await client(boxdDiff.StagingService, differ.address!);
    await new UnpackAhead(() => staging, () => contentClient, logger).committed(digest, tar.length, 'default');
    expect(await readdir(join(dir, 'diff', 'staging'))).toHaveLength(1);
    await contentClient.Delete({ digest });

    const target = join(dir, 'target');
    await mkdir(target);
    const diffClient = await client(diff.DiffService, differ.address!);
    const res = await diffClient.Apply({ diff: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: tar.length }, mounts: [{ type: 'bind', source: target, options: ['rbind'] }] });
    expect(res.applied?.digest).toBe(digest);
    expect(await readFile(join(target, 'hello.txt'), 'utf8')).toBe('unpacked ahead\n');
  });

  it('offers the diff plugin only blobs that look like layers, and says when a layer arrives', async () => {
    const staging = await client(boxdDiff.StagingService, differ.address!);
    let asked = 0;
    let layers = 0;
    const unpackAhead = new UnpackAhead(() => (asked++, staging), () => contentClient, logger, () => layers++);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    await unpackAhead.committed(await commit(config), config.length, 'default');
    const text = Buffer.alloc(4096, 'not a layer ');
    await unpackAhead.committed(await commit(text), text.length, 'default');
    expect(asked).toBe(0);
    expect(layers).toBe(0);
    const gz = gzipSync(layerTar('a.txt', Buffer.from('a')));
    await unpackAhead.committed(await commit(gz), gz.length, 'default');
    expect(asked).toBe(1);
    expect(layers).toBe(1);
    expect(looksLikeLayer(layerTar('b.txt', Buffer.from('b')))).toBe(true);

    // A write's first bytes: a layer's say so before its commit, other content's do not.
    unpackAhead.writing(config);
    unpackAhead.writing(text);
    expect(layers).toBe(1);
    unpackAhead.writing(gz.subarray(0, 16));
    expect(layers).toBe(2);
    expect(asked).toBe(1);
  });

  it('asks a diff plugin without the Staging service once, and copes with no diff plugin at all', async () => {
    // The content store serves no Staging: it answers UNIMPLEMENTED.
    const staging = await client(boxdDiff.StagingService, store.address!);
    let asked = 0;
    const unpackAhead = new UnpackAhead(() => (asked++, staging), () => contentClient, logger);
    for (const name of ['c.txt', 'd.txt']) {
      const tar = layerTar(name, Buffer.from(name));
      await unpackAhead.committed(await commit(tar), tar.length, 'default');
    }
    expect(asked).toBe(1);

    const none = new UnpackAhead(() => {
      throw new Error('no diff plugin is configured');
    }, () => contentClient, logger);
    const tar = layerTar('e.txt', Buffer.from('e'));
    await expect(none.committed(await commit(tar), tar.length, 'default')).resolves.toBeUndefined();
  });
});
