/**
 * Shim grouping as the core drives it, through upstream `ctr`: per namespace (the
 * default) the core hands each new task to the namespace's shim in one Create; per
 * container that shim declines, and the core runs `start` for a shim of the task's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { buildTestImage, findProcesses, removeDir, startBoxd, tempDir, type Boxd, type TestImage } from '@boxd/test-utils';

const RUN = Math.random().toString(36).slice(2, 7);

let image: TestImage;
let dir: string;

beforeAll(async () => {
  dir = await tempDir('bx-grouping-');
  image = await buildTestImage({ dir: join(dir, 'img') });
}, 120_000);

afterAll(() => removeDir(dir));

async function shimsOf(boxd: Boxd, ns: string): Promise<number[]> {
  const shims = await findProcesses((argv) => argv[0] === 'containerd-shim-boxd-v2' && argv.includes(boxd.address) && argv.includes(ns));
  return shims.map((p) => p.pid);
}

for (const grouping of ['per-namespace', 'per-container'] as const) {
  describe(`${grouping} shims`, () => {
    let boxd: Boxd;
    const ns = `grouping-${grouping}-${RUN}`;
    const ok = async (args: string[]) => {
      const res = await boxd.ctr(['-n', ns, ...args], { timeoutMs: 60_000 });
      if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
      return res.stdout;
    };

    beforeAll(async () => {
      // The core's environment is its shims' environment.
      process.env.BOXD_SHIM_GROUPING = grouping;
      try {
        boxd = await startBoxd({ dir: join(dir, grouping) });
      } finally {
        delete process.env.BOXD_SHIM_GROUPING;
      }
      await ok(['images', 'import', image.archive]);
    }, 120_000);

    afterAll(async () => {
      if (!boxd) return;
      try {
        for (const id of (await ok(['tasks', 'ls', '-q'])).split('\n').filter(Boolean)) await boxd.ctr(['-n', ns, 'tasks', 'kill', '-s', 'KILL', id]);
      } finally {
        await boxd.stop();
      }
    });

    it('runs each container, on as many shims as the rule says', async () => {
      const ids = [1, 2, 3].map((i) => `g${i}-${RUN}`);
      for (const id of ids) await ok(['run', '-d', image.ref, id, 'sleep', '60']);
      const listed = await ok(['tasks', 'ls']);
      for (const id of ids) expect(listed).toMatch(new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
      expect(await shimsOf(boxd, ns)).toHaveLength(grouping === 'per-namespace' ? 1 : 3);
      for (const id of ids) {
        await ok(['tasks', 'kill', '-s', 'KILL', id]);
        await expect.poll(async () => ok(['tasks', 'ls']), { timeout: 10_000 }).toMatch(new RegExp(`${id}\\s+\\d+\\s+STOPPED`));
        await ok(['tasks', 'delete', id]);
        await ok(['containers', 'delete', id]);
      }
    });
  });
}
