/**
 * Snapshots through `npx boxd` with upstream `ctr`: once the core knows a
 * parent's backend key and holds reserved sequence numbers, it creates a
 * snapshot in the overlay snapshotter while the metadata plugin records it.
 * What a client mounts must be what it asked for, also when the guess was
 * stale: a parent removed and made again under the same name.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshots } from '@boxd/api';
import { TtrpcClient, createTtrpcClient } from '@boxd/ttrpc';
import { isAlive, removeDir, runOk, startBoxd, tempDir, waitFor, type Boxd } from '@boxd/test-utils';

const NS = 'snapplan';
let dir: string;
let boxd: Boxd;

beforeAll(async () => {
  dir = await tempDir('bx-e2e-snapplan-');
  boxd = await startBoxd({ dir: join(dir, 'boxd') });
}, 60_000);

afterAll(async () => {
  await boxd?.stop();
  await removeDir(dir);
});

async function ok(args: string[]): Promise<string> {
  const res = await boxd.ctr(['-n', NS, 'snapshots', ...args]);
  if (res.code !== 0) throw new Error(`ctr snapshots ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return res.stdout;
}

/** Mounts the snapshot as `ctr snapshots mounts` says to, runs `fn` on it, unmounts. */
async function withMounted<T>(key: string, fn: (path: string) => Promise<T>): Promise<T> {
  const target = join(dir, `mnt-${key}`);
  await mkdir(target, { recursive: true });
  await runOk('sh', ['-c', await ok(['mounts', target, key])]);
  try {
    return await fn(target);
  } finally {
    await runOk('umount', [target]);
  }
}

/** A committed snapshot `name` holding the file `f` with `content`. */
async function layer(name: string, content: string): Promise<void> {
  const key = `${name}-${content}-active`;
  await ok(['prepare', key]);
  await withMounted(key, (path) => writeFile(join(path, 'f'), content));
  await ok(['commit', name, key]);
}

/** The overlay snapshotter's own keys (`<ns>/<seq>/<key>`), asked at its socket. */
async function backendKeys(): Promise<string[]> {
  const raw = await TtrpcClient.connect(join(boxd.state, 'plugins', 'overlayfs.sock'));
  try {
    const client = createTtrpcClient(snapshots.SnapshotsService, raw);
    const keys: string[] = [];
    for await (const batch of client.List({ snapshotter: 'overlayfs', filters: [] })) keys.push(...batch.info.map((i) => i.name));
    return keys;
  } finally {
    raw.close();
  }
}

/** The sequence number in the backend key of `key`; of the newest, if GC has yet to take older ones. */
const seqOf = (keys: string[], key: string, { newest = false } = {}) => {
  const seqs = keys.filter((k) => k.startsWith(`${NS}/`) && k.endsWith(`/${key}`)).map((k) => Number(k.split('/')[1]));
  if (!newest) expect(seqs, `backend keys of ${key}`).toHaveLength(1);
  return Math.max(...seqs);
};

describe('Prepare made alongside its record', () => {
  it('mounts the parent asked for, also after that parent was made again', async () => {
    await layer('base', 'v1');
    // The first child teaches the core base's backend key; the second is made alongside.
    await ok(['prepare', 'c1', 'base']);
    await ok(['prepare', 'c2', 'base']);
    for (const key of ['c1', 'c2']) expect(await withMounted(key, (path) => readFile(join(path, 'f'), 'utf8'))).toBe('v1');
    const keys = await backendKeys();
    // c2 holds a sequence number reserved before c1 was made: it was made with a reservation.
    expect(seqOf(keys, 'c2')).toBeLessThan(seqOf(keys, 'c1'));

    for (const key of ['c1', 'c2', 'base']) await ok(['rm', key]);
    await layer('base', 'v2');
    await ok(['prepare', 'c3', 'base']);
    // Made with a reservation, on the backend key base had before: then again on the right one.
    const now = await backendKeys();
    expect(seqOf(now, 'c3')).toBeLessThan(seqOf(now, 'base', { newest: true }));
    expect(await withMounted('c3', (path) => readFile(join(path, 'f'), 'utf8'))).toBe('v2');
    await withMounted('c3', (path) => writeFile(join(path, 'g'), 'top'));
    await ok(['commit', 'top', 'c3']);
    await ok(['view', 'v-top', 'top']);
    const seen = await withMounted('v-top', async (path) => [await readFile(join(path, 'f'), 'utf8'), await readFile(join(path, 'g'), 'utf8')]);
    expect(seen).toEqual(['v2', 'top']);
    expect((await ok(['ls'])).split('\n').filter(Boolean).length).toBe(1 + 3); // header, base, top, v-top
  });

  it('answers a refused create as before, leaving nothing in the backend', async () => {
    await ok(['prepare', 'dup', 'base']);
    const first = seqOf(await backendKeys(), 'dup');
    const res = await boxd.ctr(['-n', NS, 'snapshots', 'prepare', 'dup', 'base']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/already exists/);
    // The backend snapshot made for the refused create is taken back at once.
    expect(seqOf(await backendKeys(), 'dup')).toBe(first);
  });

  it('starts over without its reservations when the metadata store no longer holds them', async () => {
    await ok(['prepare', 'held-before']);
    // A metadata store lost with everything in it (restored from an old copy, say): the
    // sequence numbers the core holds mean nothing to the one that takes its place.
    const pid = Number(await readFile(join(boxd.state, 'plugins', 'metadata.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), 5000);
    await rm(join(boxd.root, 'metadata'), { recursive: true, force: true });
    await waitFor(async () => (await boxd.ctr(['-n', NS, 'snapshots', 'prepare', 'after-loss'])).code === 0, 15_000);
    await withMounted('after-loss', (path) => writeFile(join(path, 'f'), 'new'));
    expect(await withMounted('after-loss', (path) => readFile(join(path, 'f'), 'utf8'))).toBe('new');
    // The one made ahead under a reservation the new store refused was taken back.
    const keys = (await backendKeys()).filter((k) => k.endsWith('/after-loss'));
    expect(keys).toHaveLength(1);
    await ok(['prepare', 'after-loss-2']);
    expect((await ok(['ls'])).split('\n').filter(Boolean).length).toBe(1 + 2);
  });
});
