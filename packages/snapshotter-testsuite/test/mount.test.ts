import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPACT_THRESHOLD, compactLowerdir, withMounts } from '../src/index.js';

describe('compactLowerdir', () => {
  const lower = (ids: number[]) => `lowerdir=${ids.map((i) => `/var/lib/x/snapshots/${i}/fs`).join(':')}`;

  it('leaves options that fit alone', () => {
    const options = ['index=off', lower([2, 1])];
    expect(compactLowerdir(options)).toEqual({ options });
  });

  it('relativizes long lowerdirs to the snapshots directory and moves them last', () => {
    const ids = Array.from({ length: 200 }, (_, i) => 200 - i);
    const options = ['index=off', lower(ids), 'upperdir=/var/lib/x/snapshots/201/fs', 'workdir=/var/lib/x/snapshots/201/work'];
    expect(options.join(',').length).toBeGreaterThan(COMPACT_THRESHOLD);
    const out = compactLowerdir(options);
    expect(out.cwd).toBe('/var/lib/x/snapshots/');
    expect(out.options).toEqual([
      'index=off',
      'upperdir=/var/lib/x/snapshots/201/fs',
      'workdir=/var/lib/x/snapshots/201/work',
      `lowerdir=${ids.map((i) => `${i}/fs`).join(':')}`,
    ]);
  });

  it('cannot help paths with no common parent', () => {
    const dirs = Array.from({ length: 400 }, (_, i) => `/d${i}/fs`);
    const options = [`lowerdir=${dirs.join(':')}`];
    expect(compactLowerdir(options)).toEqual({ options });
  });
});

describe('withMounts', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp('/tmp/bx-mnt-');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('mounts an overlay of 150 lowerdirs whose absolute paths exceed a page', async () => {
    const base = join(dir, 'a-rather-long-directory-name-to-make-paths-long', 'snapshots');
    const lowers: string[] = [];
    for (let i = 1; i <= 150; i++) {
      const fs = join(base, String(i), 'fs');
      await mkdir(fs, { recursive: true });
      await writeFile(join(fs, `f${i}`), String(i));
      lowers.unshift(fs);
    }
    const options = [`lowerdir=${lowers.join(':')}`];
    expect(options[0]!.length).toBeGreaterThan(4096);
    const target = join(dir, 'mnt');
    await mkdir(target);
    await withMounts([{ type: 'overlay', source: 'overlay', options }], target, async (root) => {
      expect(await readFile(join(root, 'f1'), 'utf8')).toBe('1');
      expect(await readFile(join(root, 'f150'), 'utf8')).toBe('150');
    });
  });

  it('mounts a read-only bind', async () => {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'x'), 'x');
    const target = join(dir, 'ro');
    await mkdir(target);
    await withMounts([{ type: 'bind', source: src, options: ['ro', 'rbind'] }], target, async (root) => {
      expect(await readFile(join(root, 'x'), 'utf8')).toBe('x');
      await expect(writeFile(join(root, 'y'), 'y')).rejects.toMatchObject({ code: 'EROFS' });
    });
  });
});
