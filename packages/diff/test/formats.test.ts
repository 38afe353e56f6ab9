/**
 * Layer media types: plain, gzip and zstd (made by the zstd binary), Docker
 * names with sniffing, configured stream processors with their fd 3 payload.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, protobuf } from '@boxd/api';
import { cleanupTempDirs, runOk, tempDir } from '@boxd/test-utils';
import { ingest, snapshotTree, NAMESPACE, type DiffPlugin, type Upstream, startTestEnv, type TestEnv } from './harness.js';
import { makeTar } from './tars.js';

let dir: string;
let env: TestEnv;
let upstream: Upstream;
let plugin: DiffPlugin;
let tar: Buffer;
let diffId: string;
let reference: Awaited<ReturnType<typeof snapshotTree>>;
let n = 0;

async function zstd(bytes: Buffer): Promise<Buffer> {
  const { stdoutBytes } = await runOk('zstd', ['-q', '-c', '-'], { input: bytes });
  return stdoutBytes;
}

async function applyFresh(bytes: Buffer, mediaType: string, payloads?: Record<string, protobuf.Any>) {
  const root = join(dir, `root${++n}`);
  await mkdir(root);
  const blob = await ingest(upstream, bytes, mediaType);
  const res = await plugin.client.Apply({ diff: blob, mounts: [{ type: 'bind', source: root, options: ['rbind'] }], payloads }, { namespace: NAMESPACE });
  return { root, applied: res.applied! };
}

beforeAll(async () => {
  dir = await tempDir('bx-dff-');
  tar = await makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/motd', content: 'hello\n'.repeat(1000) },
    { name: 'bin/', type: 'directory', mode: 0o700 },
    { name: 'bin/run', content: Buffer.alloc(200_000, 3), mode: 0o755, uid: 1000, gid: 1000 },
    { name: 'bin/sh', type: 'symlink', linkname: 'run' },
  ]);
  diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const processors = `
[stream_processors."io.boxd.test.gunzip"]
  accepts = ["application/vnd.boxd.test.layer+gz"]
  returns = "application/vnd.oci.image.layer.v1.tar"
  path = "/bin/sh"
  args = ["-c", "cat <&3 > \\"$OUT\\"/payload-$$; echo \\"$STREAM_PROCESSOR_MEDIATYPE\\" > \\"$OUT\\"/type-$$; gzip -dc"]
  env = ["OUT=${dir}"]
[stream_processors."io.boxd.test.rot"]
  accepts = ["application/vnd.boxd.test.layer+rot"]
  returns = "application/vnd.oci.image.layer.v1.tar+gzip"
  path = "/bin/cat"
[stream_processors."io.boxd.test.broken"]
  accepts = ["application/vnd.boxd.test.layer+broken"]
  returns = "application/vnd.oci.image.layer.v1.tar"
  path = "/bin/sh"
  args = ["-c", "echo decoder key missing >&2; exit 3"]
`;
  env = await startTestEnv(dir, processors);
  ({ upstream, plugin } = env);
  const root = join(dir, 'reference');
  await mkdir(root);
  await runOk('tar', ['-xpf', '-', '-C', root], { input: tar });
  reference = await snapshotTree(root);
});

afterAll(async () => {
  await env?.stop();
  await cleanupTempDirs();
});

describe('layer media types', () => {
  const cases: [string, () => Promise<Buffer>][] = [
    ['application/vnd.oci.image.layer.v1.tar', async () => tar],
    ['application/vnd.oci.image.layer.v1.tar+gzip', async () => gzipSync(tar)],
    ['application/vnd.oci.image.layer.v1.tar+zstd', () => zstd(tar)],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', async () => gzipSync(tar)],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', async () => gzipSync(tar)],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', async () => gzipSync(tar)],
    ['application/vnd.docker.image.rootfs.diff.tar', async () => tar],
  ];
  for (const [mediaType, make] of cases) {
    it(`applies ${mediaType}`, async () => {
      const { root, applied } = await applyFresh(await make(), mediaType);
      expect(applied).toMatchObject({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: diffId });
      expect(applied.size.toString()).toBe(String(tar.length));
      expect(await snapshotTree(root)).toEqual(reference);
    });
  }

  it('sniffs compression behind a Docker plain-tar media type', async () => {
    for (const bytes of [gzipSync(tar), await zstd(tar)]) {
      const { root, applied } = await applyFresh(bytes, 'application/vnd.docker.image.rootfs.diff.tar');
      expect(applied.digest).toBe(diffId);
      expect(await snapshotTree(root)).toEqual(reference);
    }
  });

  it('refuses an unknown media type', async () => {
    await expect(applyFresh(tar, 'application/vnd.example.unknown')).rejects.toMatchObject({ code: Code.UNIMPLEMENTED });
  });

  it('reports corrupt gzip as invalid', async () => {
    const bad = gzipSync(tar);
    bad[bad.length - 5]! ^= 0xff; // breaks the CRC trailer
    await expect(applyFresh(bad, 'application/vnd.oci.image.layer.v1.tar+gzip')).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
  });
});

describe('stream processors', () => {
  it('runs a configured processor with the payload on fd 3 and the media type in its env', async () => {
    const payload = { type_url: 'example.com/KeyRef', value: Buffer.from('key-1') };
    const { root, applied } = await applyFresh(gzipSync(tar), 'application/vnd.boxd.test.layer+gz', { 'io.boxd.test.gunzip': payload });
    expect(applied.digest).toBe(diffId);
    expect(await snapshotTree(root)).toEqual(reference);
    const { readdir } = await import('node:fs/promises');
    const files = await readdir(dir);
    const payloadFile = files.find((f) => f.startsWith('payload-'))!;
    const typeFile = files.find((f) => f.startsWith('type-'))!;
    expect(protobuf.Any.decode(await readFile(join(dir, payloadFile)))).toMatchObject({ type_url: 'example.com/KeyRef' });
    expect((await readFile(join(dir, typeFile), 'utf8')).trim()).toBe('application/vnd.boxd.test.layer+gz');
  });

  it('chains a processor into built-in decompression', async () => {
    const { applied } = await applyFresh(gzipSync(tar), 'application/vnd.boxd.test.layer+rot');
    expect(applied.digest).toBe(diffId);
  });

  it('fails with the processor stderr when it exits non-zero', async () => {
    await expect(applyFresh(tar, 'application/vnd.boxd.test.layer+broken')).rejects.toThrow(/decoder key missing/);
  });
});
