import { chmod, chown, lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { codeOf } from '../harness.js';
import type { SuiteContext } from '../suite.js';

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

export function contentTests(ctx: SuiteContext): void {
  it('files of every layer show through the top; upper layers win', async () => {
    const { h } = ctx;
    const l1 = h.key('ct-l1');
    const l2 = h.key('ct-l2');
    await h.layer(l1, '', async (root) => {
      await writeFile(join(root, 'a'), 'one');
      await mkdir(join(root, 'dir'));
      await writeFile(join(root, 'dir', 'x'), 'x');
      await symlink('a', join(root, 'link'));
    });
    await h.layer(l2, l1, async (root) => {
      expect(await readFile(join(root, 'a'), 'utf8')).toBe('one');
      await writeFile(join(root, 'a'), 'one, changed');
      await writeFile(join(root, 'b'), 'two');
    });
    const top = h.key('ct-top');
    await h.withMounted(await h.view(top, l2), async (root) => {
      expect(await readFile(join(root, 'a'), 'utf8')).toBe('one, changed');
      expect(await readFile(join(root, 'b'), 'utf8')).toBe('two');
      expect(await readFile(join(root, 'dir', 'x'), 'utf8')).toBe('x');
      expect(await readlink(join(root, 'link'))).toBe('a');
    });
    const lower = h.key('ct-lower');
    await h.withMounted(await h.view(lower, l1), async (root) => {
      expect(await readFile(join(root, 'a'), 'utf8')).toBe('one');
      expect(await exists(join(root, 'b'))).toBe(false);
    });
    for (const key of [top, lower, l2, l1]) await h.remove(key);
  });

  it('a deletion in an upper layer hides the file in views above it, not below', async () => {
    const { h } = ctx;
    const l1 = h.key('wh-l1');
    const l2 = h.key('wh-l2');
    await h.layer(l1, '', async (root) => {
      await writeFile(join(root, 'gone'), 'bye');
      await writeFile(join(root, 'kept'), 'stay');
      await mkdir(join(root, 'olddir'));
      await writeFile(join(root, 'olddir', 'inner'), 'i');
    });
    await h.layer(l2, l1, async (root) => {
      await rm(join(root, 'gone'));
      await rm(join(root, 'olddir'), { recursive: true });
    });
    const above = h.key('wh-above');
    await h.withMounted(await h.view(above, l2), async (root) => {
      expect(await exists(join(root, 'gone'))).toBe(false);
      expect(await exists(join(root, 'olddir'))).toBe(false);
      expect(await readFile(join(root, 'kept'), 'utf8')).toBe('stay');
    });
    const below = h.key('wh-below');
    await h.withMounted(await h.view(below, l1), async (root) => {
      expect(await readFile(join(root, 'gone'), 'utf8')).toBe('bye');
      expect(await readFile(join(root, 'olddir', 'inner'), 'utf8')).toBe('i');
    });
    for (const key of [above, below, l2, l1]) await h.remove(key);
  });

  it('an active snapshot keeps its writes across mounts; a view is read-only', async () => {
    const { h } = ctx;
    const base = h.key('rw-base');
    await h.layer(base, '', (root) => writeFile(join(root, 'base'), 'b'));
    const active = h.key('rw-active');
    await h.withMounted(await h.prepare(active, base), (root) => writeFile(join(root, 'new'), 'n'));
    await h.withMounted(await h.mounts(active), async (root) => {
      expect(await readFile(join(root, 'new'), 'utf8')).toBe('n');
      expect(await readFile(join(root, 'base'), 'utf8')).toBe('b');
    });
    const view = h.key('rw-view');
    await h.withMounted(await h.view(view, base), async (root) => {
      expect(await codeOf(writeFile(join(root, 'nope'), 'x'))).not.toBe('resolved');
      expect(await exists(join(root, 'nope'))).toBe(false);
    });
    for (const key of [active, view, base]) await h.remove(key);
  });

  it('modes, ownership and empty directories carry over to a child snapshot', async () => {
    const { h } = ctx;
    const base = h.key('md-base');
    await h.layer(base, '', async (root) => {
      await writeFile(join(root, 'owned'), 'o');
      await chown(join(root, 'owned'), 1234, 5678);
      await chmod(join(root, 'owned'), 0o751);
      await mkdir(join(root, 'empty'), { mode: 0o700 });
    });
    const child = h.key('md-child');
    await h.withMounted(await h.prepare(child, base), async (root) => {
      const st = await stat(join(root, 'owned'));
      expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }).toEqual({ uid: 1234, gid: 5678, mode: 0o751 });
      expect((await stat(join(root, 'empty'))).isDirectory()).toBe(true);
    });
    await h.remove(child);
    await h.remove(base);
  });
}
