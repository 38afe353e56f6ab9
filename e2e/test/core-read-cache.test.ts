/**
 * The core keeps metadata answers (images, containers, namespaces, content and
 * snapshot records) until they change. Through upstream `ctr` against `npx boxd`:
 * every write is seen by the very next read, again and again, and a metadata
 * plugin killed and restarted in between changes nothing about that.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTestImage, isAlive, removeDir, startBoxd, tempDir, waitFor, type Boxd, type TestImage } from '@boxd/test-utils';

let dir: string;
let boxd: Boxd;
let image: TestImage;
const NS = 'readcache';

const ctr = async (args: string[]) => boxd.ctr(['-n', NS, ...args]);
const ok = async (args: string[]) => {
  const res = await ctr(args);
  if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return res.stdout;
};

beforeAll(async () => {
  dir = await tempDir('bx-e2e-readcache-');
  image = await buildTestImage({ dir: join(dir, 'img') });
  boxd = await startBoxd({ dir: join(dir, 'boxd') });
  await ok(['images', 'import', image.archive]);
}, 120_000);

afterAll(async () => {
  await boxd?.stop();
  await removeDir(dir);
});

describe('read cache: each write is seen by the next read', () => {
  it('containers: create, label, remove', async () => {
    for (let i = 0; i < 5; i++) {
      const id = `c${i}`;
      await ok(['containers', 'create', image.ref, id, 'true']);
      expect(JSON.parse(await ok(['containers', 'info', id])).Labels ?? {}).not.toHaveProperty('round');
      await ok(['containers', 'label', id, `round=${i}`]);
      expect(JSON.parse(await ok(['containers', 'info', id])).Labels.round).toBe(String(i));
      await ok(['containers', 'label', id, `round=${i}b`]);
      expect(JSON.parse(await ok(['containers', 'info', id])).Labels.round).toBe(`${i}b`);
      await ok(['containers', 'rm', id]);
      const gone = await ctr(['containers', 'info', id]);
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toMatch(/not found/);
    }
  });

  it('images: tag, label, remove', async () => {
    for (let i = 0; i < 5; i++) {
      const tag = `docker.io/library/readcache:t${i}`;
      await ok(['images', 'tag', image.ref, tag]);
      expect(await ok(['images', 'ls', '-q'])).toContain(tag);
      await ok(['images', 'label', tag, `round=${i}`]);
      expect(await ok(['images', 'ls'])).toContain(`round=${i}`);
      await ok(['images', 'rm', tag]);
      expect(await ok(['images', 'ls', '-q'])).not.toContain(tag);
      expect((await ctr(['images', 'check', tag])).stdout).not.toContain(tag);
    }
  });

  it('content: labels are read back at once', async () => {
    const digest = (await ok(['content', 'ls', '-q'])).trim().split('\n')[0]!;
    for (let i = 0; i < 5; i++) {
      await ok(['content', 'label', digest, `round=${i}`]);
      const line = (await ok(['content', 'ls'])).split('\n').find((l) => l.startsWith(digest))!;
      expect(line).toContain(`round=${i}`);
    }
  });

  it('snapshots: labels, and a removed snapshot is gone', async () => {
    for (let i = 0; i < 3; i++) {
      const id = `s${i}`;
      await ok(['containers', 'create', image.ref, id, 'true']);
      await ok(['snapshots', 'label', id, `round=${i}`]);
      expect(await ok(['snapshots', 'info', id])).toContain(`"round": "${i}"`);
      await ok(['containers', 'rm', id]);
      await ok(['snapshots', 'rm', id]).catch(() => undefined);
      expect((await ctr(['snapshots', 'info', id])).code).not.toBe(0);
    }
  });

  it('snapshot mounts: the prepared snapshot\'s, until it is committed or removed', async () => {
    // KEY [PARENT] KIND: a base layer has no parent column.
    const rows = (await ok(['snapshots', 'ls'])).trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    const parents = new Set(rows.map((r) => (r.length === 3 ? r[1] : '')));
    const top = rows.find((r) => r.at(-1) === 'Committed' && !parents.has(r[0]))![0]!;
    const mounts = async (key: string) => ok(['snapshots', 'mounts', '/tmp/target', key]);
    const upper = (text: string) => /upperdir=([^,\s]+)/.exec(text)?.[1];

    await ok(['snapshots', 'prepare', 'm-active', top]);
    const first = await mounts('m-active');
    expect(upper(first)).toMatch(/\/fs$/);
    expect(await mounts('m-active')).toBe(first);

    await ok(['snapshots', 'commit', 'm-done', 'm-active']);
    expect((await ctr(['snapshots', 'mounts', '/tmp/target', 'm-active'])).stderr).toMatch(/not found/);

    // The same client key again is a new snapshot with directories of its own.
    await ok(['snapshots', 'prepare', 'm-active', 'm-done']);
    const again = await mounts('m-active');
    expect(upper(again)).toMatch(/\/fs$/);
    expect(upper(again)).not.toBe(upper(first));
    expect(again).toContain(upper(first)!);
    await ok(['snapshots', 'rm', 'm-active']);
    expect((await ctr(['snapshots', 'mounts', '/tmp/target', 'm-active'])).code).not.toBe(0);
    await ok(['snapshots', 'rm', 'm-done']);
  });

  it('an image removed with --sync takes its blobs at once', async () => {
    const tag = 'docker.io/library/readcache:sync';
    const other = 'readcache-sync';
    // A namespace of its own, so the blobs have no other holder.
    await boxd.ctr(['-n', other, 'images', 'import', image.archive]);
    const digests = (await boxd.ctr(['-n', other, 'content', 'ls', '-q'])).stdout.trim().split('\n');
    expect(digests.length).toBeGreaterThan(0);
    expect((await boxd.ctr(['-n', other, 'content', 'get', digests[0]!])).code).toBe(0);
    await boxd.ctr(['-n', other, 'images', 'tag', image.ref, tag]);
    await boxd.ctr(['-n', other, 'images', 'rm', image.ref]);
    const rm = await boxd.ctr(['-n', other, 'images', 'rm', '--sync', tag]);
    expect(rm.code).toBe(0);
    for (const digest of digests) expect((await boxd.ctr(['-n', other, 'content', 'get', digest])).code).not.toBe(0);
  });

  it('stays right across a kill -9 of the metadata plugin', async () => {
    const id = 'survivor';
    await ok(['containers', 'create', image.ref, id, 'true']);
    await ok(['containers', 'label', id, 'before=kill']);
    expect(JSON.parse(await ok(['containers', 'info', id])).Labels.before).toBe('kill');
    const pidFile = join(boxd.state, 'plugins', 'metadata.pid');
    const pid = Number(await readFile(pidFile, 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), 5000);
    // Calls fail fast (UNAVAILABLE) during the restart backoff; then the plugin is back.
    await waitFor(async () => (await ctr(['containers', 'label', id, 'after=restart'])).code === 0, 10_000);
    const labels = JSON.parse(await ok(['containers', 'info', id])).Labels;
    expect(labels).toMatchObject({ before: 'kill', after: 'restart' });
    await ok(['containers', 'rm', id]);
    expect((await ctr(['containers', 'info', id])).code).not.toBe(0);
  });
});
