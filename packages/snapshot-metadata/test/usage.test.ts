import { link, lstat, mkdir, mkdtemp, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { diskUsage } from '../src/index.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-du-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const blocks = async (path: string) => BigInt((await stat(path)).blocks) * 512n;

it('counts allocated blocks and distinct inodes, the root included, hardlinks once', async () => {
  const root = join(dir, 'tree');
  await mkdir(join(root, 'a', 'b'), { recursive: true });
  await writeFile(join(root, 'a', 'b', 'data'), Buffer.alloc(100_000, 7));
  await link(join(root, 'a', 'b', 'data'), join(root, 'hard'));
  await symlink('a/b/data', join(root, 'soft'));
  // 1 GiB apparent size, no blocks: usage is what the disk holds.
  await writeFile(join(root, 'sparse'), '');
  await truncate(join(root, 'sparse'), 1 << 30);

  const usage = await diskUsage(root);
  // root, a, b, data (= hard), soft, sparse
  expect(usage.inodes).toBe(6n);
  let expected = 0n;
  for (const p of ['', 'a', 'a/b', 'a/b/data', 'sparse']) expected += await blocks(join(root, p));
  expected += BigInt((await lstat(join(root, 'soft'))).blocks) * 512n;
  expect(usage.size).toBe(expected);
  expect(usage.size).toBeLessThan(1n << 20n);
});

it('a file root counts itself', async () => {
  const file = join(dir, 'single');
  await writeFile(file, 'x');
  expect(await diskUsage(file)).toEqual({ size: await blocks(file), inodes: 1n });
});

it('a missing root is an error', async () => {
  await expect(diskUsage(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
});
