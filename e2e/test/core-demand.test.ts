/**
 * Plugins started on demand: at idle only the core runs; the first ctr
 * command that needs a plugin starts it, and it stops again once idle.
 * Real `npx boxd` processes, real ctr.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTestImage, CTR, findProcesses, isAlive, removeDir, startBoxd, tempDir, waitFor, type Boxd, type TestImage } from '@boxd/test-utils';

const PLUGINS = ['content', 'events', 'overlayfs', 'native', 'diff', 'metadata'];
const IDLE = '1s';

let dir: string;
let boxd: Boxd;
let image: TestImage;

const ok = async (args: string[]) => {
  const res = await boxd.ctr(args);
  if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return res.stdout;
};

/** The plugins that run now: their pid files, each naming a live process. */
async function running(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const f of await readdir(join(boxd.state, 'plugins'))) {
    if (!f.endsWith('.pid')) continue;
    const pid = Number(await readFile(join(boxd.state, 'plugins', f), 'utf8').catch(() => 'NaN'));
    if (isAlive(pid)) out[f.slice(0, -'.pid'.length)] = pid;
  }
  return out;
}

/** Plugin processes under this core's state dir, found by their command line (not by pid file). */
const pluginProcesses = () => findProcesses((argv) => argv.includes('--ready-fd') && argv.some((a) => a.startsWith(`${boxd.state}/`)));

/** The plugins the core started on demand while `action` ran (from its log). */
async function startedDuring(action: () => Promise<unknown>): Promise<string[]> {
  const from = (await readFile(boxd.logPath, 'utf8')).length;
  await action();
  // The core's log is written asynchronously.
  await new Promise((r) => setTimeout(r, 500));
  const lines = (await readFile(boxd.logPath, 'utf8')).slice(from).split('\n').filter(Boolean);
  const ids: string[] = [];
  for (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; plugin?: string };
    if (entry.msg === 'starting plugin on demand' && entry.plugin) ids.push(entry.plugin);
  }
  return ids.sort();
}

const allStopped = async () => Object.keys(await running()).length === 0 && (await pluginProcesses()).length === 0;

function subscribe(): { child: ChildProcess; output: () => string } {
  const child = spawn(CTR, ['-a', boxd.address, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  return { child, output: () => text };
}

beforeAll(async () => {
  dir = await tempDir('bx-demand-');
  image = await buildTestImage({ dir: join(dir, 'img') });
  boxd = await startBoxd({ dir: join(dir, 'boxd'), config: PLUGINS.map((id) => `[plugins.${id}]\nidle_exit = "${IDLE}"\n`).join('') });
}, 120_000);

afterAll(async () => {
  await boxd?.stop();
  await removeDir(dir);
}, 60_000);

describe('plugins started on demand', () => {
  it('at idle only the core runs, and ctr plugins ls lists every plugin as ok', async () => {
    expect(await running()).toEqual({});
    expect(await pluginProcesses()).toEqual([]);
    const plugins = await ok(['plugins', 'ls']);
    for (const p of ['content\\.v1\\s+content', 'event\\.v1\\s+events', 'snapshotter\\.v1\\s+overlayfs', 'snapshotter\\.v1\\s+native', 'differ\\.v1\\s+diff', 'metadata\\.v1\\s+metadata']) {
      expect(plugins).toMatch(new RegExp(`io\\.containerd\\.${p}\\s.*ok`));
    }
    expect(await running()).toEqual({});
  });

  it('a command starts the plugins it needs; they stop once idle and start again for the next one', async () => {
    expect(await startedDuring(() => ok(['images', 'import', image.archive]))).toEqual(expect.arrayContaining(['content', 'diff', 'metadata', 'overlayfs']));
    await waitFor(allStopped, 20_000);

    let listed = '';
    expect(await startedDuring(async () => (listed = await ok(['images', 'ls', '-q'])))).toEqual(['metadata']);
    expect(listed).toContain(image.ref);
    await waitFor(allStopped, 20_000);
    let usage = '';
    expect(await startedDuring(async () => (usage = await ok(['snapshots', 'usage'])))).toEqual(['metadata', 'overlayfs']);
    expect(usage).toMatch(/sha256:/);
    expect(await ok(['content', 'get', image.digest])).toContain('schemaVersion');
    await waitFor(allStopped, 20_000);
  });

  it('a new lease starts the content store beside metadata, for the content calls that follow it', async () => {
    await waitFor(allStopped, 20_000);
    let lease = '';
    expect(await startedDuring(async () => (lease = (await ok(['leases', 'create'])).trim()))).toEqual(['content', 'metadata']);
    expect(await ok(['leases', 'ls'])).toContain(lease);
    await ok(['leases', 'rm', lease]);
    await waitFor(allStopped, 20_000);
  });

  it('an events subscriber starts the bus and holds it; events without a subscriber do not start it', async () => {
    expect(await startedDuring(() => ok(['namespaces', 'create', 'nobody-listens']))).not.toContain('events');

    const sub = subscribe();
    try {
      await waitFor(async () => (await running()).events !== undefined, 10_000);
      // Let the subscription reach the bus first: nothing orders a subscribe and a publish that arrive together.
      await new Promise((r) => setTimeout(r, 1000));
      await ok(['namespaces', 'create', 'someone-listens']);
      await waitFor(() => sub.output().includes('/namespaces/create'), 10_000);
      expect(sub.output()).toContain('someone-listens');
      expect(sub.output()).not.toContain('nobody-listens');
      // Well past the idle time: the open subscription keeps it.
      const bus = (await running()).events;
      await new Promise((r) => setTimeout(r, 2500));
      expect((await running()).events).toBe(bus);
    } finally {
      sub.child.kill();
    }
    await waitFor(async () => (await running()).events === undefined, 20_000);
    await ok(['namespaces', 'rm', 'nobody-listens']);
    await ok(['namespaces', 'rm', 'someone-listens']);
  });

  it("metadata's garbage collection reaches stopped plugins through their sockets, which start them", async () => {
    await waitFor(allStopped, 20_000);
    const blobs = join(boxd.root, 'content', 'blobs', 'sha256');
    const snapshots = join(boxd.root, 'overlayfs', 'snapshots');
    expect((await readdir(blobs)).length).toBeGreaterThan(0);
    expect((await readdir(snapshots)).length).toBeGreaterThan(0);
    await ok(['images', 'rm', image.ref]);
    // Only metadata serves the removal; its collection then sweeps the content store and the snapshotters.
    await waitFor(async () => (await readdir(blobs)).length === 0 && (await readdir(snapshots)).length === 0, 20_000);
    await waitFor(allStopped, 20_000);
  });

  it('SIGTERM of the core stops the plugins that run', async () => {
    await ok(['images', 'import', image.archive]);
    const pids = Object.values(await running());
    expect(pids.length).toBeGreaterThan(0);
    await boxd.stop();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(await pluginProcesses()).toEqual([]);
    await boxd.restart();
  });
});
