/** kill -9 of plugins and of the core itself: supervision restarts, nothing on disk is lost. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTestImage, CTR, isAlive, removeDir, startBoxd, tempDir, waitFor, type Boxd, type TestImage } from '@boxd/test-utils';

let dir: string;
let image: TestImage;

const pluginPid = async (b: Boxd, id: string) => Number(await readFile(join(b.state, 'plugins', `${id}.pid`), 'utf8').catch(() => 'NaN'));

function okOn(b: Boxd) {
  return async (args: string[]) => {
    const res = await b.ctr(args);
    if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
    return res.stdout;
  };
}

beforeAll(async () => {
  dir = await tempDir('bx-crash-');
  image = await buildTestImage({ dir: join(dir, 'img') });
}, 120_000);

afterAll(async () => {
  await removeDir(dir);
}, 60_000);

describe('plugins started on demand (the default)', () => {
  let boxd: Boxd;
  let ok: (args: string[]) => Promise<string>;
  const subscribers: ChildProcess[] = [];
  let unpacks = 0;

  /** A command that needs each plugin, so that it runs. */
  const use: Record<string, () => Promise<unknown>> = {
    metadata: () => ok(['images', 'ls']),
    content: () => ok(['content', 'get', image.digest]),
    overlayfs: () => ok(['snapshots', 'usage']),
    // Snapshots are per namespace: unpacking into a new one applies the layer again.
    diff: () => ok(['-n', `crash-diff-${++unpacks}`, 'images', 'import', image.archive]),
    // A subscriber holds the bus as long as its stream is open.
    events: async () => {
      const sub = spawn(CTR, ['-a', boxd.address, 'events'], { stdio: 'ignore' });
      subscribers.push(sub);
      await waitFor(async () => sub.exitCode !== null || isAlive(await pluginPid(boxd, 'events')), 10_000);
      if (sub.exitCode !== null) throw new Error(`ctr events exited with ${sub.exitCode}`);
    },
  };

  beforeAll(async () => {
    boxd = await startBoxd({ dir: join(dir, 'boxd') });
    ok = okOn(boxd);
    await ok(['images', 'import', image.archive]);
    await ok(['leases', 'create', '--id', 'keep-me']);
  }, 120_000);

  afterAll(async () => {
    for (const s of subscribers) s.kill();
    await boxd?.stop();
  }, 60_000);

  for (const id of ['content', 'metadata', 'overlayfs', 'diff', 'events']) {
    it(`${id}: the next commands work and nothing is lost`, async () => {
      await use[id]();
      const before = await pluginPid(boxd, id);
      expect(isAlive(before)).toBe(true);
      // Commands racing the kill may fail fast with Unavailable; they must not hang.
      const racing = Promise.all([boxd.ctr(['images', 'ls']), boxd.ctr(['content', 'ls']), boxd.ctr(['snapshots', 'ls'])]);
      process.kill(before, 'SIGKILL');
      for (const r of await racing) expect(r.code === 0 || /unavailable|closed|connection/i.test(r.stderr), r.stderr).toBe(true);
      // Nothing holds it after the kill: the next command that needs it starts it again.
      await waitFor(async () => {
        await use[id]().catch(() => undefined);
        return isAlive(await pluginPid(boxd, id));
      }, 20_000);
      expect(await pluginPid(boxd, id)).not.toBe(before);
      expect(await ok(['images', 'ls', '-q'])).toContain(image.ref);
      expect(await ok(['content', 'ls', '-q'])).toContain(image.digest);
      expect((await ok(['snapshots', 'ls'])).match(/Committed/g)?.length).toBe(1);
      expect(await ok(['leases', 'ls'])).toMatch(/keep-me/);
      // The restarted plugin serves writes too.
      await ok(['images', 'tag', '--force', image.ref, `docker.io/library/bb:after-${id}`]);
    });
  }

  it('kill -9 of the core: a restart on the same root stops the plugins it left and keeps every image, snapshot and lease', async () => {
    const left = await Promise.all(['metadata', 'content', 'overlayfs'].map((id) => pluginPid(boxd, id)));
    expect(left.every(isAlive)).toBe(true);
    await boxd.kill9();
    await boxd.restart();
    for (const pid of left) expect(isAlive(pid)).toBe(false);
    expect(await ok(['images', 'ls', '-q'])).toContain(image.ref);
    expect(await ok(['images', 'ls', '-q'])).toContain('docker.io/library/bb:after-metadata');
    expect((await ok(['snapshots', 'ls'])).match(/Committed/g)?.length).toBe(1);
    expect(await ok(['leases', 'ls'])).toMatch(/keep-me/);
    expect(await ok(['content', 'get', image.digest])).toContain('schemaVersion');
  });
});

describe('plugins started at boot', () => {
  let boxd: Boxd;
  let ok: (args: string[]) => Promise<string>;

  beforeAll(async () => {
    const ids = ['content', 'events', 'overlayfs', 'native', 'diff', 'metadata'];
    boxd = await startBoxd({ dir: join(dir, 'boxd-boot'), config: ids.map((id) => `[plugins.${id}]\nstart = "boot"\n`).join('') });
    ok = okOn(boxd);
    await ok(['images', 'import', image.archive]);
  }, 120_000);

  afterAll(async () => {
    await boxd?.stop();
  }, 60_000);

  for (const id of ['metadata', 'content', 'events']) {
    it(`${id} is restarted with backoff without waiting for a command`, async () => {
      const before = await pluginPid(boxd, id);
      expect(isAlive(before)).toBe(true);
      process.kill(before, 'SIGKILL');
      await waitFor(async () => (await pluginPid(boxd, id)) !== before && isAlive(await pluginPid(boxd, id)), 20_000);
      // Calls fail fast until it is ready again.
      await waitFor(async () => (await boxd.ctr(['content', 'get', image.digest])).code === 0, 20_000);
      expect(await ok(['images', 'ls', '-q'])).toContain(image.ref);
      expect(await ok(['content', 'ls', '-q'])).toContain(image.digest);
    });
  }
});
