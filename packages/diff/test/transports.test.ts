/**
 * The boxd way: our content-store plugin on ttrpc as the blob source and
 * sink, our diff plugin called over ttrpc.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { content, diff } from '@boxd/api';
import { TtrpcClient, createTtrpcClient } from '@boxd/ttrpc';
import { cleanupTempDirs, spawnDaemon, tempDir, waitForSocket, type Daemon } from '@boxd/test-utils';
import { writeBlob } from '../src/content/write-blob.js';
import { snapshotTree, startDiffPlugin, type DiffPlugin } from './harness.js';
import { makeTar } from './tars.js';

const CONTENT_STORE_BIN = fileURLToPath(new URL('../../content-store/dist/bin.js', import.meta.url));
let dir: string;
let store: Daemon;
let plugin: DiffPlugin;
let storeConnection: TtrpcClient;
let diffConnection: TtrpcClient;
let contentClient: ReturnType<typeof createTtrpcClient<typeof content.ContentService>>;
let diffClient: ReturnType<typeof createTtrpcClient<typeof diff.DiffService>>;

beforeAll(async () => {
  dir = await tempDir('bx-dft-');
  const storeAddress = join(dir, 'content.sock');
  store = spawnDaemon(process.execPath, [CONTENT_STORE_BIN, '--address', storeAddress, '--root', join(dir, 'content'), '--log-level', 'warn'], join(dir, 'content.log'));
  await waitForSocket(storeAddress, 15_000);
  plugin = await startDiffPlugin(dir, `content_address = ${JSON.stringify(storeAddress)}\n`);
  await waitForSocket(plugin.ttrpcAddress, 15_000);
  storeConnection = await TtrpcClient.connect(storeAddress);
  contentClient = createTtrpcClient(content.ContentService, storeConnection);
  diffConnection = await TtrpcClient.connect(plugin.ttrpcAddress);
  diffClient = createTtrpcClient(diff.DiffService, diffConnection);
});

afterAll(async () => {
  await diffConnection?.close();
  await storeConnection?.close();
  await plugin?.stop();
  await store?.stop();
  await cleanupTempDirs();
});

describe('over ttrpc with the boxd content store', () => {
  it('applies a layer read from the content store and diffs back into it', async () => {
    const tar = await makeTar([
      { name: 'app/', type: 'directory' },
      { name: 'app/main.js', content: 'console.log(1)\n' },
      { name: 'app/big', content: Buffer.alloc(3 << 20, 9) },
    ]);
    const gz = gzipSync(tar);
    const digest = `sha256:${createHash('sha256').update(gz).digest('hex')}`;
    await writeBlob(contentClient, { ref: 'layer-1', commit: () => ({ digest, size: BigInt(gz.length), labels: {} }) }, (async function* () { yield gz; })(), {});
    const root = join(dir, 'root');
    await mkdir(root);
    const res = await diffClient.Apply({ diff: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: gz.length }, mounts: [{ type: 'bind', source: root, options: ['rbind'] }] });
    expect(res.applied?.digest).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    expect(await readFile(join(root, 'app/main.js'), 'utf8')).toBe('console.log(1)\n');

    const upper = join(dir, 'upper');
    await mkdir(join(upper, 'app'), { recursive: true });
    await writeFile(join(upper, 'app/main.js'), 'console.log(2)\n');
    const made = await diffClient.Diff({ left: [{ type: 'bind', source: root, options: ['rbind', 'ro'] }], right: [{ type: 'bind', source: upper, options: ['rbind', 'ro'] }], ref: 'diff-1' });
    const info = (await contentClient.Info({ digest: made.diff!.digest })).info!;
    expect(info.size.toString()).toBe(made.diff!.size.toString());
    expect(info.labels['containerd.io/uncompressed']).toMatch(/^sha256:/);

    const again = join(dir, 'again');
    await mkdir(again);
    await diffClient.Apply({ diff: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: gz.length }, mounts: [{ type: 'bind', source: again, options: ['rbind'] }] });
    await diffClient.Apply({ diff: made.diff, mounts: [{ type: 'bind', source: again, options: ['rbind'] }] });
    expect(await snapshotTree(again, { dirMtimes: false })).toEqual(await snapshotTree(upper, { dirMtimes: false }));
  });
});
