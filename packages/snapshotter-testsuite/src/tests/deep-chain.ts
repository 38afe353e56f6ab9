import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { SuiteContext } from '../suite.js';

const TIMEOUT = 120_000;

export function deepChainTests(ctx: SuiteContext): void {
  const depth = ctx.options.deepChainLayers ?? 130;
  const layer = (i: number) => ctx.h.key(`dc-${String(i).padStart(4, '0')}`);
  // Files go into a few layers only: mounting every layer would make the test slow.
  const written = new Set([0, Math.floor(depth / 2), depth - 1]);
  const write = (i: number) =>
    ctx.options.mount && written.has(i) ? (root: string) => writeFile(join(root, `from-${i}`), `layer ${i}`) : undefined;

  it(`commits a chain of ${depth} layers and lists them all`, async () => {
    const { h } = ctx;
    for (let i = 0; i < depth; i++) await h.layer(layer(i), i === 0 ? '' : layer(i - 1), write(i));
    expect((await h.stat(layer(depth - 1))).parent).toBe(layer(depth - 2));
    // More than one List message's worth of snapshots.
    const { infos } = await h.list([`name~=^${h.prefix}dc-`]);
    expect(infos.map((i) => i.name).sort()).toEqual(Array.from({ length: depth }, (_, i) => layer(i)));
  }, TIMEOUT);

  it.runIf(ctx.options.mount)(`mounts a view and an active snapshot on top of all ${depth} layers`, async () => {
    const { h } = ctx;
    const top = layer(depth - 1);
    const view = h.key('dc-view');
    await h.withMounted(await h.view(view, top), async (root) => {
      for (const i of written) expect(await readFile(join(root, `from-${i}`), 'utf8')).toBe(`layer ${i}`);
    });
    const active = h.key('dc-active');
    await h.withMounted(await h.prepare(active, top), async (root) => {
      await writeFile(join(root, 'on-top'), 'top');
      expect(await readFile(join(root, 'from-0'), 'utf8')).toBe('layer 0');
    });
    expect((await h.usage(active)).inodes).toBeGreaterThanOrEqual(2n);
    await h.remove(view);
    await h.remove(active);
  }, TIMEOUT);

  it('removes the chain top-down', async () => {
    const { h } = ctx;
    for (let i = depth - 1; i >= 0; i--) await h.remove(layer(i));
    expect(await h.names('dc-')).toEqual([]);
    await h.expectCleanup(ctx.options.cleanup ?? true);
  }, TIMEOUT);
}
