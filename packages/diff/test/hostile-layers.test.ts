/**
 * Hostile layers: every one is refused with an error that names the path (or,
 * for absolute names, lands inside the root), and nothing is ever written
 * outside the target directory.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Code, isBoxdError } from '@boxd/api';
import { cleanupTempDirs, tempDir } from '@boxd/test-utils';
import { ingest, NAMESPACE, type DiffPlugin, type Upstream, startTestEnv, type TestEnv } from './harness.js';
import { makeTar, type TarSpec } from './tars.js';

const TAR = 'application/vnd.oci.image.layer.v1.tar';
let dir: string;
let env: TestEnv;
let upstream: Upstream;
let plugin: DiffPlugin;
let sentinel: string;
let caseDir: string;
let root: string;
let caseNo = 0;

async function listAll(path: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(path)) {
    out.push(name);
    const stat = await lstat(join(path, name));
    if (stat.isDirectory()) out.push(...(await listAll(join(path, name))).map((n) => `${name}/${n}`));
  }
  return out.sort();
}

async function apply(entries: TarSpec[], options: { endBlocks?: boolean; raw?: Buffer } = {}) {
  const bytes = options.raw ?? (await makeTar(entries, options));
  const blob = await ingest(upstream, bytes, TAR);
  return plugin.client.Apply({ diff: blob, mounts: [{ type: 'bind', source: root, options: ['rbind'] }] }, { namespace: NAMESPACE });
}

async function rejected(entries: TarSpec[], code: number, mentions: string, options: { raw?: Buffer } = {}) {
  const err = await apply(entries, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isBoxdError(err), `expected an error, got ${String(err)}`).toBe(true);
  expect((err as { code: number }).code).toBe(code);
  expect((err as Error).message).toContain(mentions);
}

beforeAll(async () => {
  dir = await tempDir('bx-dfh-');
  sentinel = join(dir, 'sentinel');
  await mkdir(sentinel);
  await writeFile(join(sentinel, 'secret'), 'do not touch\n');
  env = await startTestEnv(dir);
  ({ upstream, plugin } = env);
});

beforeEach(async () => {
  caseDir = join(dir, `case${++caseNo}`);
  root = join(caseDir, 'root');
  await mkdir(root, { recursive: true });
});

/** Nothing outside the root changed: the case dir holds only the root, the sentinel is intact. */
async function nothingOutside(): Promise<void> {
  expect(await readdir(caseDir)).toEqual(['root']);
  expect(await listAll(sentinel)).toEqual(['secret']);
  expect(await readFile(join(sentinel, 'secret'), 'utf8')).toBe('do not touch\n');
  expect((await lstat(join(sentinel, 'secret'))).nlink).toBe(1);
}

afterAll(async () => {
  await env?.stop();
  await cleanupTempDirs();
});

describe('hostile layers', () => {
  it('rejects ../escape', async () => {
    await rejected([{ name: '../escape', content: 'x' }], Code.INVALID_ARGUMENT, '../escape');
    await nothingOutside();
  });

  it('rejects a/../../escape', async () => {
    await rejected([{ name: 'a/', type: 'directory' }, { name: 'a/../../escape', content: 'x' }], Code.INVALID_ARGUMENT, 'a/../../escape');
    await nothingOutside();
  });

  it('puts absolute names inside the root, never at the host path', async () => {
    const top = `bx-abs-${randomBytes(4).toString('hex')}`;
    await apply([{ name: `/${top}/passwd`, content: 'root::0:0::/:/bin/sh\n' }]);
    expect(await readFile(join(root, top, 'passwd'), 'utf8')).toBe('root::0:0::/:/bin/sh\n');
    expect(existsSync(`/${top}`)).toBe(false);
    await nothingOutside();
  });

  it('does not write through a symlink to /', async () => {
    const name = `bx-escape-${randomBytes(4).toString('hex')}`;
    await rejected([{ name: 'link', type: 'symlink', linkname: '/' }, { name: `link/${name}`, content: 'pwned' }], Code.INVALID_ARGUMENT, `link/${name}`);
    expect(existsSync(`/${name}`)).toBe(false);
    await nothingOutside();
  });

  it('does not write through a symlink to ../../..', async () => {
    await rejected([{ name: 'link', type: 'symlink', linkname: '../../..' }, { name: 'link/x', content: 'pwned' }], Code.INVALID_ARGUMENT, 'link/x');
    await nothingOutside();
  });

  it('does not write through a chain of symlinks that ends outside', async () => {
    await rejected(
      [
        { name: 'd/', type: 'directory' },
        { name: 'd/up', type: 'symlink', linkname: '..' },
        { name: 'hop', type: 'symlink', linkname: 'd/up/d/up/..' },
        { name: 'hop/sentinel/secret', content: 'pwned' },
      ],
      Code.INVALID_ARGUMENT,
      'hop/sentinel/secret',
    );
    await nothingOutside();
  });

  it('follows symlinks that stay inside the root', async () => {
    await apply([
      { name: 'usr/lib/', type: 'directory' },
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { name: 'lib/libx.so', content: 'elf' },
    ]);
    expect(await readFile(join(root, 'usr/lib/libx.so'), 'utf8')).toBe('elf');
    await nothingOutside();
  });

  it('rejects a hardlink to ../../outside', async () => {
    await rejected([{ name: 'hl', type: 'link', linkname: '../../sentinel/secret' }], Code.INVALID_ARGUMENT, 'hl');
    await nothingOutside();
  });

  it('resolves an absolute hardlink target inside the root (and fails when it is not there)', async () => {
    await rejected([{ name: 'hl', type: 'link', linkname: join(sentinel, 'secret') }], Code.NOT_FOUND, 'hl');
    await nothingOutside();
  });

  it('rejects writes through a symlink planted by an earlier layer', async () => {
    await apply([
      { name: 'evil', type: 'symlink', linkname: sentinel },
      { name: 'evil2', type: 'symlink', linkname: '../../sentinel' },
    ]);
    await rejected([{ name: 'evil/pwned', content: 'x' }], Code.INVALID_ARGUMENT, 'evil/pwned');
    await rejected([{ name: 'evil2/pwned', content: 'x' }], Code.INVALID_ARGUMENT, 'evil2/pwned');
    await rejected([{ name: 'evil/.wh.secret', content: '' }], Code.INVALID_ARGUMENT, 'evil/.wh.secret');
    await nothingOutside();
  });

  it('does not set directory times through a parent replaced by a symlink later in the layer', async () => {
    await mkdir(join(sentinel, 'b'));
    const before = (await lstat(join(sentinel, 'b'))).mtimeMs;
    await apply([
      { name: 'a/', type: 'directory' },
      { name: 'a/b/', type: 'directory', mtime: new Date(1_000_000_000) },
      { name: 'a', type: 'symlink', linkname: sentinel },
    ]);
    expect((await lstat(join(sentinel, 'b'))).mtimeMs).toBe(before);
    await rm(join(sentinel, 'b'), { recursive: true });
    await nothingOutside();
  });

  it('rejects whiteouts that name . or ..', async () => {
    await rejected([{ name: 'a/', type: 'directory' }, { name: 'a/.wh...', content: '' }], Code.INVALID_ARGUMENT, 'a/.wh...');
    await rejected([{ name: '.wh..', content: '' }], Code.INVALID_ARGUMENT, '.wh..');
    await nothingOutside();
  });

  it('refuses device nodes unless allow_devices is set', async () => {
    await rejected([{ name: 'dev/', type: 'directory' }, { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 }], Code.FAILED_PRECONDITION, 'dev/sda');
    expect(existsSync(join(root, 'dev/sda'))).toBe(false);
    await nothingOutside();
  });

  it('accepts a tar that ends without the end-of-archive blocks', async () => {
    const res = await apply([{ name: 'a.txt', content: 'complete' }, { name: 'b/', type: 'directory' }], { endBlocks: false });
    expect(await readFile(join(root, 'a.txt'), 'utf8')).toBe('complete');
    expect(res.applied?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    await nothingOutside();
  });

  it('fails cleanly on a tar cut inside an entry', async () => {
    const whole = await makeTar([{ name: 'big', content: Buffer.alloc(10_000, 1) }]);
    await rejected([], Code.INVALID_ARGUMENT, 'truncated', { raw: whole.subarray(0, 5_000) });
    await nothingOutside();
  });

  it('fails cleanly on garbage', async () => {
    await rejected([], Code.INVALID_ARGUMENT, 'invalid tar', { raw: randomBytes(4096) });
    await nothingOutside();
  });

  it('rejects a blob whose bytes do not match its digest', async () => {
    const blob = await ingest(upstream, await makeTar([{ name: 'f', content: 'x' }]), TAR);
    const err = await plugin.client
      .Apply({ diff: { ...blob, digest: `sha256:${'0'.repeat(64)}` }, mounts: [{ type: 'bind', source: root, options: ['rbind'] }] }, { namespace: NAMESPACE })
      .catch((e: unknown) => e);
    expect((err as { code: number }).code).toBe(Code.NOT_FOUND);
    await nothingOutside();
  });

  it('rejects requests without a layer, without mounts, or with a read-only overlay', async () => {
    const blob = await ingest(upstream, await makeTar([{ name: 'f', content: 'x' }]), TAR);
    const call = (request: Parameters<typeof plugin.client.Apply>[0]) => plugin.client.Apply(request, { namespace: NAMESPACE }).catch((e: unknown) => e);
    expect(await call({ mounts: [{ type: 'bind', source: root, options: ['rbind'] }] })).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(await call({ diff: blob, mounts: [] })).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(await call({ diff: blob, mounts: [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${root}`] }] })).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(await call({ diff: { ...blob, digest: 'md5:abc' }, mounts: [{ type: 'bind', source: root, options: ['rbind'] }] })).toMatchObject({ code: Code.INVALID_ARGUMENT });
    await nothingOutside();
  });

  it('stops a cancelled apply and keeps serving', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => ({ name: `f${i}`, content: randomBytes(8192) }));
    const blob = await ingest(upstream, await makeTar(many), TAR);
    const controller = new AbortController();
    const call = plugin.client.Apply({ diff: blob, mounts: [{ type: 'bind', source: root, options: ['rbind'] }] }, { namespace: NAMESPACE, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    expect(await call.catch((e: unknown) => e)).toMatchObject({ code: Code.CANCELLED });
    const after = await apply([{ name: 'still-works', content: 'yes' }]);
    expect(after.applied?.digest).toMatch(/^sha256:/);
    expect(await readFile(join(root, 'still-works'), 'utf8')).toBe('yes');
    await nothingOutside();
  });
});
