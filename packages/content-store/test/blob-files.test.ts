/** boxd.content.v1.BlobFiles, served by the plugin over ttrpc beside the Content service. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxdContent, Code, content } from '@boxd/api';
import { createLogger, startPlugin, type RunningPlugin } from '@boxd/plugin-kit';
import { connect, createTtrpcClient, type TtrpcClient } from '@boxd/ttrpc';
import { contentStorePlugin } from '../src/index.js';

let dir: string;
let plugin: RunningPlugin;
let connection: TtrpcClient;
let files: ReturnType<typeof createTtrpcClient<typeof boxdContent.BlobFilesService>>;
let store: ReturnType<typeof createTtrpcClient<typeof content.ContentService>>;

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-csf-');
  plugin = await startPlugin(contentStorePlugin, { root: join(dir, 'root'), address: join(dir, 't.sock'), logger: createLogger('content-store', 'silent') });
  connection = await connect(plugin.address!);
  files = createTtrpcClient(boxdContent.BlobFilesService, connection);
  store = createTtrpcClient(content.ContentService, connection);
});

afterAll(async () => {
  await connection?.close();
  await plugin?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function commit(data: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const call = store.Write();
  await call.send({ action: content.WriteAction.WRITE, ref: `r-${digest}`, offset: 0, data });
  await call.recv();
  await call.send({ action: content.WriteAction.COMMIT, ref: `r-${digest}`, offset: data.length, total: data.length, expected: digest });
  await call.recv();
  await call.end();
  return digest;
}

describe('BlobFiles', () => {
  it('names the file of a committed blob, which holds its bytes', async () => {
    const data = randomBytes(100_000);
    const digest = await commit(data);
    const res = await files.Path({ digest });
    expect(isAbsolute(res.path)).toBe(true);
    expect(res.size.toString()).toBe(String(data.length));
    expect((await readFile(res.path)).equals(data)).toBe(true);
  });

  it('is NOT_FOUND for a blob that is not committed, INVALID_ARGUMENT for a bad digest', async () => {
    await expect(files.Path({ digest: `sha256:${'1'.repeat(64)}` })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    await expect(files.Path({ digest: 'sha256:xyz' })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
  });
});
