/**
 * Upstream containerd 1.6 using boxd's content store (a separate process,
 * serving gRPC) as its proxy content plugin: ctr's import, content ls/get
 * and ingest all go through our store, and the blobs land in our root.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { content, leases } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { runContentSuite } from '@boxd/content-testsuite';
import {
  CTR,
  buildTestImage,
  cleanupTempDirs,
  runOk,
  spawnDaemon,
  startContainerd,
  tempDir,
  waitForSocket,
  type Containerd,
  type Daemon,
  type TestImage,
} from '@boxd/test-utils';

const CONTENT_STORE_BIN = fileURLToPath(new URL('../../packages/content-store/dist/bin.js', import.meta.url));
const BUILTIN_CONTENT = 'io.containerd.content.v1.content';

let store: Daemon | undefined;
let storeRoot: string;
let containerd: Containerd | undefined;
let image: TestImage;

/** `ctr content get` output as raw bytes (blobs are binary). */
async function contentGet(digest: string): Promise<Buffer> {
  const result = await runOk(CTR, ['-a', containerd!.address, 'content', 'get', digest]);
  return result.stdoutBytes;
}

const SUITE_NAMESPACE = 'content-proxy-conformance';
const suiteClients: Array<ReturnType<typeof createGrpcClient<typeof content.ContentService>>> = [];

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function blobFiles(): Promise<string[]> {
  const dir = join(storeRoot, 'blobs', 'sha256');
  return (await readdir(dir).catch(() => [])).map((hex) => `sha256:${hex}`);
}

beforeAll(async () => {
  const dir = await tempDir('bx-cp-');
  storeRoot = join(dir, 'store');
  const grpcAddress = join(dir, 'cs.sock');
  store = spawnDaemon(process.execPath, [CONTENT_STORE_BIN, '--grpc-address', grpcAddress, '--root', storeRoot], join(dir, 'content-store.log'));
  await waitForSocket(grpcAddress);
  image = await buildTestImage({ dir });
  containerd = await startContainerd({
    dir: join(dir, 'cd'),
    proxyPlugins: { boxd: { type: 'content', address: grpcAddress } },
    // With two content plugins loaded, which one the metadata store picks is arbitrary.
    disableBuiltins: [BUILTIN_CONTENT],
    // `ctr content ingest` holds no lease: its blob is garbage the moment it is committed,
    // and containerd's periodic collection (every ~50 gc-durations while anything was
    // deleted) could take it before the test reads it back. Collections after the first
    // come only when asked for.
    extraToml: '[plugins."io.containerd.gc.v1.scheduler"]\n  pause_threshold = 0.000000001\n',
  });
  const leaseClient = createGrpcClient(leases.LeasesService, containerd.address);
  await leaseClient.Create({ id: SUITE_NAMESPACE }, { namespace: SUITE_NAMESPACE });
  leaseClient.close();
});

afterAll(async () => {
  for (const client of suiteClients) client.close();
  await containerd?.stop();
  await store?.stop();
  await cleanupTempDirs();
});

describe('upstream containerd with boxd as its content store', () => {
  it('loads boxd as its only content plugin', async () => {
    const { stdout } = await containerd!.ctr(['plugins', 'ls']);
    expect(stdout).toMatch(/io\.containerd\.content\.v1\s+boxd\s+-\s+ok/);
    expect(stdout).not.toMatch(/io\.containerd\.content\.v1\s+content\s/);
  });

  it('imports an OCI archive into our store', async () => {
    const imported = await containerd!.ctr(['images', 'import', image.archive]);
    expect(imported.code, imported.stderr).toBe(0);
    const { stdout } = await containerd!.ctr(['images', 'ls', '-q']);
    expect(stdout.split('\n')).toContain(image.ref);

    const listed = await containerd!.ctr(['content', 'ls', '-q']);
    expect(listed.code, listed.stderr).toBe(0);
    const digests = listed.stdout.split('\n').filter(Boolean);
    expect(digests).toContain(image.digest);
    // Every blob containerd lists is a file in our root, and ours hashes to its name.
    const files = await blobFiles();
    for (const digest of digests) {
      expect(files).toContain(digest);
      const bytes = await readFile(join(storeRoot, 'blobs', 'sha256', digest.slice('sha256:'.length)));
      expect(sha256(bytes)).toBe(digest);
    }
  });

  it('runs a container from the image it unpacked out of our store', async () => {
    const ran = await containerd!.ctr(['run', '--rm', image.ref, 'content-proxy-run', 'echo', 'from-boxd-content']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe('from-boxd-content');
  });

  it('serves blob bytes to ctr content get', async () => {
    const { stdout } = await containerd!.ctr(['content', 'ls', '-q']);
    const digests = stdout.split('\n').filter(Boolean);
    expect(digests.length).toBeGreaterThanOrEqual(3);
    for (const digest of digests) expect(sha256(await contentGet(digest))).toBe(digest);
  });

  it('ingests content with ctr content ingest', async () => {
    const data = Buffer.from(randomBytes(300_000).toString('base64'));
    const digest = sha256(data);
    const ingested = await containerd!.ctr(['content', 'ingest', '--expected-size', String(data.length), '--expected-digest', digest, 'e2e-ingest'], { input: data });
    expect(ingested.code, ingested.stderr).toBe(0);
    expect((await contentGet(digest)).equals(data)).toBe(true);
    const file = join(storeRoot, 'blobs', 'sha256', digest.slice('sha256:'.length));
    expect((await stat(file)).size).toBe(data.length);
    expect(sha256(await readFile(file))).toBe(digest);
  });
});

// The whole conformance suite through containerd's public API, with our store underneath:
// containerd's metadata layer and content service in front of our blobs behave as with its own.
runContentSuite({
  name: 'upstream containerd 1.6 over the boxd content store',
  namespace: SUITE_NAMESPACE,
  metadata: { 'containerd-lease': SUITE_NAMESPACE },
  readOffsets: 'relative',
  connect: () => {
    const client = createGrpcClient(content.ContentService, containerd!.address);
    suiteClients.push(client);
    return client;
  },
  disconnect: (client) => suiteClients.find((c) => c === client)?.close(),
});
