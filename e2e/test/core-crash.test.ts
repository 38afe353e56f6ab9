/** kill -9 of plugins and of the core itself: supervision restarts, nothing on disk is lost. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTestImage, removeDir, startBoxd, tempDir, waitFor, type Boxd, type TestImage } from '@boxd/test-utils';

let dir: string;
let boxd: Boxd;
let image: TestImage;

const ok = async (args: string[]) => {
  const res = await boxd.ctr(args);
  if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return res.stdout;
};

const pluginPid = async (id: string) => Number(await readFile(join(boxd.state, 'plugins', `${id}.pid`), 'utf8'));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  dir = await tempDir('bx-crash-');
  image = await buildTestImage({ dir: join(dir, 'img') });
  boxd = await startBoxd({ dir: join(dir, 'boxd') });
  await ok(['images', 'import', image.archive]);
  await ok(['leases', 'create', '--id', 'keep-me']);
}, 120_000);

afterAll(async () => {
  await boxd?.stop();
  await removeDir(dir);
}, 60_000);

describe('kill -9 of a plugin', () => {
  for (const id of ['content', 'metadata', 'overlayfs', 'diff', 'events']) {
    it(`restarts ${id}; the next commands work and nothing is lost`, async () => {
      const before = await pluginPid(id);
      // Commands racing the kill may fail fast with Unavailable; they must not hang.
      const racing = Promise.all([boxd.ctr(['images', 'ls']), boxd.ctr(['content', 'ls']), boxd.ctr(['snapshots', 'ls'])]);
      process.kill(before, 'SIGKILL');
      for (const r of await racing) expect(r.code === 0 || /unavailable|closed|connection/i.test(r.stderr), r.stderr).toBe(true);
      await waitFor(async () => (await pluginPid(id)) !== before && (await boxd.ctr(['images', 'ls'])).code === 0, 20_000);
      expect(alive(await pluginPid(id))).toBe(true);
      expect(await ok(['images', 'ls', '-q'])).toContain(image.ref);
      expect(await ok(['content', 'ls', '-q'])).toContain(image.digest);
      expect((await ok(['snapshots', 'ls'])).match(/Committed/g)?.length).toBe(1);
      expect(await ok(['leases', 'ls'])).toMatch(/keep-me/);
      // The restarted plugin serves writes too.
      await ok(['images', 'tag', '--force', image.ref, `docker.io/library/bb:after-${id}`]);
    });
  }
});

describe('kill -9 of the core', () => {
  it('restarts on the same root with every image, snapshot and lease', async () => {
    await boxd.kill9();
    await boxd.restart();
    expect(await ok(['images', 'ls', '-q'])).toContain(image.ref);
    expect(await ok(['images', 'ls', '-q'])).toContain('docker.io/library/bb:after-metadata');
    expect((await ok(['snapshots', 'ls'])).match(/Committed/g)?.length).toBe(1);
    expect(await ok(['leases', 'ls'])).toMatch(/keep-me/);
    expect(await ok(['content', 'get', image.digest])).toContain('schemaVersion');
  });
});
