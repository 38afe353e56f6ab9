/** Rootfs mounts made with mount(2) directly: what mount(8) would have made, or a clear error. */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupTempDirs, run, tempDir } from '@boxd/test-utils';
import { mountAll, unmountAll } from '../src/index.js';
import { plan } from '../src/mount-options.js';

afterAll(() => cleanupTempDirs());

/** The mount's options as the kernel reports them in /proc/self/mountinfo. */
async function mountOptions(target: string): Promise<string[]> {
  const lines = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n');
  const line = lines.reverse().find((l) => l.split(' ')[4] === target);
  if (!line) throw new Error(`${target} is not mounted`);
  return line.split(' ')[5]!.split(',');
}

async function layer(dir: string, name: string, files: Record<string, string>): Promise<string> {
  const path = join(dir, name);
  await mkdir(path, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(path, file), text);
  return path;
}

describe('mount options', () => {
  it('splits flags, propagation and filesystem data', () => {
    expect(plan('overlay', ['ro', 'index=off', 'lowerdir=/a:/b'])).toEqual({ flags: 1, propagation: 0, data: 'index=off,lowerdir=/a:/b', bind: false });
    expect(plan('bind', ['rbind', 'ro', 'rprivate'])).toMatchObject({ bind: true, data: '', propagation: 0x40000 | 0x4000 });
    expect(plan('', ['bind', 'rw'])).toMatchObject({ bind: true });
  });

  it('leaves to mount(8) what needs it', () => {
    expect(plan('ext4', ['ro'])).toBeUndefined();
    expect(plan('overlay', ['loop'])).toBeUndefined();
    expect(plan('bind', ['rbind', 'x-systemd.automount'])).toBeUndefined();
    expect(plan('bind', ['rbind', 'size=10'])).toBeUndefined();
  });
});

describe('direct mounts', () => {
  it('mounts an overlay whose upper layer wins and takes writes', async () => {
    const dir = await tempDir('bx-mnt-');
    const lower = await layer(dir, 'lower', { a: 'lower-a', b: 'lower-b' });
    const upper = await layer(dir, 'upper', { a: 'upper-a' });
    const work = await layer(dir, 'work', {});
    const target = await layer(dir, 'rootfs', {});
    await mountAll([{ type: 'overlay', source: 'overlay', options: ['index=off', `workdir=${work}`, `upperdir=${upper}`, `lowerdir=${lower}`] }], target);
    try {
      expect(await readFile(join(target, 'a'), 'utf8')).toBe('upper-a');
      expect(await readFile(join(target, 'b'), 'utf8')).toBe('lower-b');
      await writeFile(join(target, 'c'), 'new');
      expect(await readFile(join(upper, 'c'), 'utf8')).toBe('new');
    } finally {
      unmountAll(target);
    }
    expect((await run('mountpoint', ['-q', target])).code).not.toBe(0);
  });

  it('makes a read-only bind mount really read-only', async () => {
    const dir = await tempDir('bx-mnt-');
    const source = await layer(dir, 'src', { f: 'data' });
    const target = await layer(dir, 'rootfs', {});
    await mountAll([{ type: 'bind', source, options: ['rbind', 'ro'] }], target);
    try {
      expect(await readFile(join(target, 'f'), 'utf8')).toBe('data');
      expect(await mountOptions(target)).toContain('ro');
      await expect(writeFile(join(target, 'g'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    } finally {
      unmountAll(target);
    }
  });

  it('says what was wrong and leaves nothing mounted', async () => {
    const dir = await tempDir('bx-mnt-');
    const target = await layer(dir, 'rootfs', {});
    const missing = join(dir, 'no-such-lower');
    await expect(mountAll([{ type: 'overlay', source: 'overlay', options: [`lowerdir=${missing}`] }], target)).rejects.toThrow(/mount overlay on .*rootfs: No such file or directory/);
    expect((await run('mountpoint', ['-q', target])).code).not.toBe(0);
  });
});
