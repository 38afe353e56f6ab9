/**
 * The reaper with real orphans: this test process becomes a child subreaper, and
 * a shell's background job, orphaned when the shell exits, becomes its child (as
 * a container's init becomes the shim's once runc exits).
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exitCodeOf } from '../src/native.js';
import { Reaper } from '../src/reaper.js';
import { spawnHelper } from '../src/spawn.js';

const reaper = new Reaper();
reaper.start();

/** Starts `script` in the background of a shell that exits at once; resolves with the orphan's pid. */
function orphan(script: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sh = spawnHelper('/bin/sh', ['-c', `(${script}) >/dev/null 2>&1 & echo $!`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    sh.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    sh.on('error', reject);
    // 'close', not 'exit': the pid line may still be unread when the shell exits.
    sh.on('close', () => resolve(Number(out.trim())));
  });
}

function isZombie(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` with a window open, as the shim opens one before `runc create`: an
 * orphan that ends before `exited` watches it still hands over its status.
 */
async function withWindow<T>(fn: (exited: (pid: number) => Promise<number>) => Promise<T>): Promise<T> {
  const window = reaper.openWindow();
  try {
    return await fn((pid) => new Promise<number>((resolve) => reaper.watch(pid, (status) => resolve(exitCodeOf(status)), window)));
  } finally {
    window.close();
  }
}

describe('Reaper', () => {
  it('hands a watched orphan its exit status', async () => {
    expect(await withWindow(async (exited) => exited(await orphan('sleep 0.2; exit 7')))).toBe(7);
  });

  it('keeps the exit of a child nobody watches for the window open meanwhile', async () => {
    const window = reaper.openWindow();
    try {
      const pid = await orphan('sleep 0.1; exit 3');
      await expect.poll(() => window.claim(pid), { timeout: 5000 }).toBeDefined();
      expect(exitCodeOf(window.claim(pid)!)).toBe(3);
    } finally {
      window.close();
    }
  });

  it('reaps each of several watched orphans that end together', async () => {
    const codes = await withWindow(async (exited) => {
      const pids = await Promise.all([1, 2, 3, 4].map((code) => orphan(`sleep 0.3; exit ${code}`)));
      return Promise.all(pids.map(exited));
    });
    expect(codes).toEqual([1, 2, 3, 4]);
  });

  it('while a helper runs, reaps orphans and leaves the helper to Node', async () => {
    const helper = spawnHelper('/bin/sh', ['-c', 'sleep 0.6; exit 5'], { stdio: 'ignore' });
    const helperExit = new Promise<number | null>((resolve) => helper.once('exit', resolve));
    const codes = await withWindow(async (exited) => {
      const pids = await Promise.all([4, 6].map((code) => orphan(`sleep 0.1; exit ${code}`)));
      return Promise.all(pids.map(exited));
    });
    expect(codes).toEqual([4, 6]);
    expect(await helperExit).toBe(5);
  });

  it('leaves the exit of a helper to Node even when reaping while it is a zombie', async () => {
    const helper = spawnHelper('/bin/sh', ['-c', 'exit 5'], { stdio: 'ignore' });
    const helperExit = new Promise<number | null>((resolve) => helper.once('exit', resolve));
    // Synchronously, so libuv cannot reap it first: wait for the zombie, then reap.
    const deadline = Date.now() + 5000;
    while (!isZombie(helper.pid!) && Date.now() < deadline);
    expect(isZombie(helper.pid!)).toBe(true);
    reaper.reap();
    const noExit = new Promise((resolve) => setTimeout(() => resolve('no exit event'), 5000).unref());
    expect(await Promise.race([helperExit, noExit])).toBe(5);
  });

  it('reaps an orphan nobody watches, leaving no zombie', async () => {
    const pid = await orphan('sleep 0.1');
    // Reaped, a zombie's /proc entry goes; unreaped, it stays in state Z.
    await expect.poll(() => existsSync(`/proc/${pid}`), { timeout: 5000 }).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/stat`, 'utf8')).toBe(false);
  });
});
