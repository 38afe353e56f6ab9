/**
 * `ctr run` and `ctr tasks` against boxd, once with boxd's own shim (the
 * default for io.containerd.runc.v2) and once with upstream's
 * containerd-shim-runc-v2, selected in boxd's config.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { buildTestImage, CTR, removeDir, run, startBoxd, tempDir, waitFor, type Boxd, type TestImage } from '@boxd/test-utils';

// runc keeps state per namespace under one root on the machine: ids unique per run.
const RUN = Math.random().toString(36).slice(2, 7);
const id = (name: string) => `${name}-${RUN}`;

const SHIMS = [
  { name: 'boxd shim', config: undefined },
  { name: 'upstream containerd-shim-runc-v2', config: '[runtimes."io.containerd.runc.v2"]\nshim = "containerd-shim-runc-v2"\n' },
];

let image: TestImage;
let imageDir: string;

beforeAll(async () => {
  imageDir = await tempDir('bx-img-');
  image = await buildTestImage({ dir: imageDir });
}, 120_000);

afterAll(() => removeDir(imageDir));

for (const shim of SHIMS) {
  describe(`ctr run on boxd with ${shim.name}`, () => {
    let dir: string;
    let boxd: Boxd;
    const ctr = (args: string[], input?: string) => boxd.ctr(args, { input, timeoutMs: 60_000 });
    const ok = async (args: string[]) => {
      const res = await ctr(args);
      if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
      return res.stdout;
    };
    const runRm = (name: string, args: string[], flags: string[] = []) => ctr(['run', '--rm', ...flags, image.ref, id(name), ...args]);

    beforeAll(async () => {
      dir = await tempDir('bx-tasks-');
      boxd = await startBoxd({ dir: join(dir, 'boxd'), config: shim.config });
      await ok(['images', 'import', image.archive]);
    }, 120_000);

    afterAll(async () => {
      for (const id of (await ctr(['tasks', 'ls', '-q'])).stdout.split('\n').filter(Boolean)) await ctr(['tasks', 'kill', '-s', 'KILL', id]);
      await boxd?.stop();
      await removeDir(dir);
    }, 60_000);

    it('run --rm prints and exits with the container status', async () => {
      const hello = await runRm('t1', ['echo', 'hello']);
      expect(hello.code, hello.stderr).toBe(0);
      expect(hello.stdout).toBe('hello\n');
      const three = await runRm('t2', ['sh', '-c', 'exit 3']);
      expect(three.code).toBe(3);
      expect(await ok(['containers', 'ls', '-q'])).not.toMatch(/t1|t2/);
    });

    // ctr 1.6 has no --user flag; the user comes from the image config or the spec.
    it('honours --env, --cwd, --read-only, --net-host, --memory-limit', async () => {
      expect((await runRm('o1', ['sh', '-c', 'echo $FOO'], ['--env', 'FOO=bar'])).stdout).toBe('bar\n');
      expect((await runRm('o2', ['pwd'], ['--cwd', '/tmp'])).stdout).toBe('/tmp\n');
      const ro = await runRm('o4', ['touch', '/x'], ['--read-only']);
      expect(ro.code).not.toBe(0);
      expect(ro.stderr + ro.stdout).toMatch(/Read-only file system/);
      const net = await runRm('o5', ['readlink', '/proc/1/ns/net'], ['--net-host']);
      expect(net.stdout.trim()).toBe(readlinkSync('/proc/self/ns/net'));
      const isolated = await runRm('o6', ['readlink', '/proc/1/ns/net']);
      expect(isolated.stdout.trim()).not.toBe(readlinkSync('/proc/self/ns/net'));
      const o7 = id('o7');
      await ok(['run', '-d', '--memory-limit', '33554432', image.ref, o7, 'sleep', '30']);
      expect(await ok(['tasks', 'metrics', o7])).toMatch(/memory\.limit_in_bytes\s+33554432|memory\.max\s+33554432/);
      await ok(['tasks', 'kill', '-s', 'KILL', o7]);
      await waitFor(async () => new RegExp(`${o7}\\s+\\d+\\s+STOPPED`).test(await ok(['tasks', 'ls'])), 10_000);
      await ok(['tasks', 'delete', o7]);
      await ok(['containers', 'rm', o7]);
    });

    it('run -d, exec, ps, pause/resume, metrics, ls, kill', async () => {
      const d1 = id('d1');
      await ok(['run', '-d', image.ref, d1, 'sh', '-c', 'trap "exit 7" TERM; while true; do sleep 0.1; done']);
      expect(await ok(['tasks', 'ls'])).toMatch(new RegExp(`${d1}\\s+\\d+\\s+RUNNING`));
      const ps = await ok(['tasks', 'exec', '--exec-id', 'e1', d1, 'ps']);
      expect(ps).toMatch(/PID\s+USER\s+COMMAND/);
      expect(ps).toMatch(/sh -c trap/);
      expect(await ok(['tasks', 'ps', d1])).toMatch(/^\s*\d+/m);
      await ok(['tasks', 'pause', d1]);
      expect(await ok(['tasks', 'ls'])).toMatch(new RegExp(`${d1}\\s+\\d+\\s+PAUSED`));
      await ok(['tasks', 'resume', d1]);
      expect(await ok(['tasks', 'ls'])).toMatch(new RegExp(`${d1}\\s+\\d+\\s+RUNNING`));
      expect(await ok(['tasks', 'metrics', d1])).toMatch(/memory\.usage|memory/);
      await ok(['tasks', 'kill', d1]);
      await waitFor(async () => new RegExp(`${d1}\\s+\\d+\\s+STOPPED`).test(await ok(['tasks', 'ls'])), 10_000);
      const del = await ctr(['tasks', 'delete', d1]);
      expect(del.code, del.stderr).toBe(0);
      expect(del.stdout + del.stderr).toMatch(/7/);
      await ok(['containers', 'rm', d1]);
    });

    it('ctr events shows /tasks/oom for an OOM kill in a container that runs on', async () => {
      const events = spawn(CTR, ['-a', boxd.address, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      events.stdout.on('data', (d) => (out += d));
      const o1 = id('oom1');
      try {
        await new Promise((r) => setTimeout(r, 500));
        // The subshell holding 100 MB is killed (it volunteers as the OOM killer's victim, or
        // the killer may pick init); init goes on to sleep.
        const hog = '(echo 1000 > /proc/self/oom_score_adj; x=$(yes | head -c 100000000)); exec sleep 60';
        await ok(['run', '-d', '--memory-limit', String(16 << 20), image.ref, o1, 'sh', '-c', hog]);
        await waitFor(() => new RegExp(`/tasks/oom .*"container_id":"${o1}"`).test(out), 10_000);
        expect(await ok(['tasks', 'ls'])).toMatch(new RegExp(`${o1}\\s+\\d+\\s+RUNNING`));
      } finally {
        events.kill();
        await ctr(['tasks', 'kill', '-s', 'KILL', o1]);
        await waitFor(async () => !new RegExp(`${o1}\\s+\\d+\\s+RUNNING`).test(await ok(['tasks', 'ls'])), 10_000);
        await ctr(['tasks', 'delete', o1]);
        await ctr(['containers', 'rm', o1]);
      }
    });

    it('run -t gives the container a terminal', async () => {
      const res = await run('script', ['-qec', `ctr -a ${boxd.address} run --rm -t ${image.ref} ${id('tty1')} sh -c 'tty && echo input-ok'`, '/dev/null'], { timeoutMs: 60_000 });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/\/dev\/pts\/\d+/);
      expect(res.stdout).toMatch(/input-ok/);
    });
  });
}

describe('kill -9 of the core with containers running', () => {
  let dir: string;
  let boxd: Boxd;
  beforeAll(async () => {
    dir = await tempDir('bx-survive-');
    boxd = await startBoxd({ dir: join(dir, 'boxd') });
    const res = await boxd.ctr(['images', 'import', image.archive]);
    expect(res.code, res.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await boxd?.stop();
    await removeDir(dir);
  }, 60_000);

  it('keeps them running; after restart they are RUNNING and exits are reported', async () => {
    const ids = ['s1', 's2', 's3', 's4', 's5'].map(id);
    for (const [i, id] of ids.entries()) {
      const res = await boxd.ctr(['run', '-d', image.ref, id, 'sh', '-c', `trap "exit ${10 + i}" TERM; while true; do sleep 0.1; done`]);
      expect(res.code, res.stderr).toBe(0);
    }
    const pids = (await boxd.ctr(['tasks', 'ls'])).stdout.split('\n').slice(1).filter(Boolean).map((l) => Number(l.split(/\s+/)[1]));
    expect(pids.length).toBe(5);
    await boxd.kill9();
    for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();
    await boxd.restart();
    await waitFor(async () => {
      const ls = (await boxd.ctr(['tasks', 'ls'])).stdout;
      return ids.every((id) => new RegExp(`${id}\\s+\\d+\\s+RUNNING`).test(ls));
    }, 20_000);
    for (const [i, id] of ids.entries()) {
      await boxd.ctr(['tasks', 'kill', id]);
      await waitFor(async () => new RegExp(`${id}\\s+\\d+\\s+STOPPED`).test((await boxd.ctr(['tasks', 'ls'])).stdout), 10_000);
      const del = await boxd.ctr(['tasks', 'delete', id]);
      expect(del.code, del.stderr).toBe(0);
      expect(del.stderr + del.stdout).toMatch(new RegExp(`exit code ${10 + i}|${10 + i}`));
    }
  });
});
