import { randomBytes } from 'node:crypto';
import { link, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { SuiteContext } from '../suite.js';

const MiB = 1 << 20;

export function usageTests(ctx: SuiteContext): void {
  it('Usage of a fresh active snapshot counts at least its root', async () => {
    const { h } = ctx;
    const key = h.key('us-fresh');
    await h.prepare(key);
    const usage = await h.usage(key);
    expect(usage.inodes).toBeGreaterThanOrEqual(1n);
    expect(usage.size).toBeGreaterThanOrEqual(0n);
    await h.remove(key);
  });

  it('Usage of a view is zero: it holds nothing of its own', async () => {
    const { h } = ctx;
    const base = h.key('us-vbase');
    await h.layer(base, '');
    const view = h.key('us-view');
    await h.view(view, base);
    expect(await h.usage(view)).toEqual({ size: 0n, inodes: 0n });
    await h.remove(view);
    await h.remove(base);
  });

  it.runIf(ctx.options.mount)(
    'Usage counts written blocks and inodes, hardlinks once, and a commit keeps the figure',
    async () => {
      const { h } = ctx;
      const key = h.key('us-write-a');
      const mounts = await h.prepare(key);
      // Random data: nothing below can compress or deduplicate it.
      await h.withMounted(mounts, async (root) => {
        await writeFile(join(root, 'data'), randomBytes(MiB));
        await link(join(root, 'data'), join(root, 'data-link'));
      });
      const active = await h.usage(key);
      // The root and one file; the hardlink is the same inode.
      expect(active.inodes).toBe(2n);
      expect(active.size).toBeGreaterThanOrEqual(BigInt(MiB));
      expect(active.size).toBeLessThan(BigInt(2 * MiB));

      const name = h.key('us-write');
      await h.commit(name, key);
      expect(await h.usage(name)).toEqual(active);
      await h.remove(name);
    },
    30_000,
  );
}
