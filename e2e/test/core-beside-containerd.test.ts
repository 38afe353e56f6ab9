/**
 * boxd and upstream containerd on one machine, each with its default shim, running a
 * container of the same namespace and id at once: boxd's shim keeps runc's state apart
 * from upstream's, so neither start fails and removing one leaves the other running.
 * (`--cgroup` keeps the two apart where ctr itself would put both: /<ns>/<id>.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTestImage, removeDir, startBoxd, startContainerd, tempDir, waitFor, type Boxd, type Containerd, type TestImage } from '@boxd/test-utils';

const RUN = Math.random().toString(36).slice(2, 7);
const NS = `bx-beside-${RUN}`;
const ID = 'same';

type Daemon = Boxd | Containerd;

let dir: string;
let image: TestImage;
const daemons: Record<'boxd' | 'containerd', Daemon | undefined> = { boxd: undefined, containerd: undefined };

async function ok(daemon: Daemon | undefined, args: string[]): Promise<string> {
  const res = await daemon!.ctr(['-n', NS, ...args], { timeoutMs: 60_000 });
  if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return res.stdout;
}

/** The task's pid and status from `ctr tasks ls`. */
async function task(daemon: Daemon | undefined): Promise<{ pid: number; status: string } | undefined> {
  const line = (await ok(daemon, ['tasks', 'ls'])).split('\n').find((l) => l.startsWith(`${ID} `));
  if (!line) return undefined;
  const [, pid, status] = line.trim().split(/\s+/);
  return { pid: Number(pid), status: status ?? '' };
}

async function remove(daemon: Daemon | undefined): Promise<void> {
  await ok(daemon, ['tasks', 'kill', '-s', 'KILL', ID]);
  await waitFor(async () => (await task(daemon))?.status === 'STOPPED', 10_000);
  await ok(daemon, ['tasks', 'delete', ID]);
  await ok(daemon, ['containers', 'delete', ID]);
}

beforeAll(async () => {
  dir = await tempDir('bx-beside-');
  image = await buildTestImage({ dir: join(dir, 'img') });
  daemons.containerd = await startContainerd({ dir: join(dir, 'containerd') });
  daemons.boxd = await startBoxd({ dir: join(dir, 'boxd') });
  for (const d of Object.values(daemons)) await ok(d, ['images', 'import', image.archive]);
}, 120_000);

afterAll(async () => {
  for (const d of Object.values(daemons)) {
    if (d && (await task(d).catch(() => undefined))) await d.ctr(['-n', NS, 'tasks', 'kill', '-s', 'KILL', ID]);
  }
  await daemons.boxd?.stop();
  await daemons.containerd?.stop();
  // runc leaves each namespace's (now empty) state root behind.
  for (const root of ['/run/boxd/runc', '/run/containerd/runc']) await rmdir(join(root, NS)).catch(() => undefined);
  await removeDir(dir);
}, 60_000);

describe('boxd beside containerd', () => {
  it('both run the same namespace and id; removing either leaves the other running', async () => {
    const start = (name: 'boxd' | 'containerd') => ok(daemons[name], ['run', '-d', '--cgroup', `/${NS}/${name}`, image.ref, ID, 'sleep', '600']);
    await start('containerd');
    await start('boxd');
    const [up, ours] = [await task(daemons.containerd), await task(daemons.boxd)];
    expect(up?.status).toBe('RUNNING');
    expect(ours?.status).toBe('RUNNING');
    expect(ours!.pid).not.toBe(up!.pid);
    expect(existsSync(`/run/containerd/runc/${NS}/${ID}/state.json`)).toBe(true);
    expect(existsSync(`/run/boxd/runc/${NS}/${ID}/state.json`)).toBe(true);

    await remove(daemons.boxd);
    expect(() => process.kill(up!.pid, 0)).not.toThrow();
    expect((await task(daemons.containerd))?.status).toBe('RUNNING');

    // And the other way round, with boxd's container started second again.
    await start('boxd');
    const again = await task(daemons.boxd);
    await remove(daemons.containerd);
    expect(() => process.kill(again!.pid, 0)).not.toThrow();
    expect((await task(daemons.boxd))?.status).toBe('RUNNING');
    await remove(daemons.boxd);
  });
});
