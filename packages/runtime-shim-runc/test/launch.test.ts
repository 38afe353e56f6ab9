/**
 * Runtime calls vforked by the daemon: real processes, their output through real
 * pipes and their exits through the reaper (this test process becomes a subreaper,
 * as the daemon is).
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@boxd/test-utils';
import { describe, expect, it } from 'vitest';
import { nodeLauncher, reapedLauncher, type Launched, type Launcher } from '../src/launch.js';
import { Reaper } from '../src/reaper.js';

const reaper = new Reaper();
reaper.start();
const vforked = reapedLauncher(reaper);

/** Output and exit code of `launched`, feeding it `input`. */
async function outcome(launched: Launched, input = '') {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  launched.stdout?.on('data', (b: Buffer) => out.push(b));
  launched.stderr?.on('data', (b: Buffer) => err.push(b));
  launched.stdin?.on('error', () => undefined); // EPIPE once a process that reads nothing has exited
  launched.stdin?.end(input);
  const code = await launched.ended;
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

const sh = (launch: Launcher, script: string, stdio: Parameters<Launcher>[2] = ['pipe', 'pipe', 'pipe']) => launch('sh', ['-c', script], stdio);

describe('launching runtime calls', () => {
  it('gives a vforked process pipes for stdin, stdout and stderr, and its exit code once its output ended', async () => {
    const script = 'read line; echo "got $line"; echo oops >&2; (sleep 0.2; echo late) & exit 3';
    for (const launch of [vforked, nodeLauncher]) {
      expect(await outcome(sh(launch, script), 'hello\n')).toEqual({ code: 3, stdout: 'got hello\nlate\n', stderr: 'oops\n' });
    }
  });

  it('reports a signal as 128 + its number, as a shell would', async () => {
    for (const launch of [vforked, nodeLauncher]) expect((await outcome(sh(launch, 'kill -9 $$'))).code).toBe(137);
  });

  it('starts every signal at its default, unblocked', async () => {
    const mask = await outcome(sh(vforked, 'grep -E "^Sig(Blk|Ign)" /proc/self/status'));
    // This process ignores SIGPIPE (as Node does); the child must not.
    expect(mask.stdout).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('hands over fds of ours as stdio, /dev/null for ignore, and nothing else', async () => {
    const dir = await tempDir('bx-launch-');
    const file = join(dir, 'out');
    const fd = openSync(file, 'w');
    try {
      const listing = await outcome(sh(vforked, 'echo to-file; ls /proc/self/fd; readlink /proc/self/fd/0 >&2', ['ignore', fd, 'pipe']));
      expect(listing.code).toBe(0);
      expect(listing.stderr).toBe('/dev/null\n');
      // 0, 1, 2 and the one ls opened to list them.
      expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toEqual(['to-file', '0', '1', '2', '3']);
    } finally {
      closeSync(fd);
    }
  });

  it('fails the call with the reason when the program cannot be started', async () => {
    await expect(vforked('/no/such/runc', ['state', 'x'], ['pipe', 'pipe', 'pipe']).ended).rejects.toThrow('spawn /no/such/runc: No such file or directory');
    await expect(vforked('no-such-runc-on-path', [], ['pipe', 'pipe', 'pipe']).ended).rejects.toThrow(/No such file or directory/);
  });

  it('leaves stdio a vfork does not express (inherit) to Node', async () => {
    expect((await outcome(sh(vforked, 'exit 5', ['inherit', 'pipe', 'pipe']))).code).toBe(5);
  });
});
