/**
 * Upstream containerd 1.6 runs containers with our shim: `--runtime io.containerd.boxd.v2`
 * makes containerd look for `containerd-shim-boxd-v2` in its PATH, which here includes
 * packages/runtime-shim-runc/bin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTestImage, cleanupTempDirs, findProcesses, startContainerd, tempDir, waitFor, type Containerd, type TestImage } from '@boxd/test-utils';

const SHIM_BIN_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../packages/runtime-shim-runc/bin');
const RUNTIME = 'io.containerd.boxd.v2';

let cd: Containerd;
let image: TestImage;
const originalPath = process.env.PATH;

function shims(): Promise<{ pid: number; argv: string[] }[]> {
  return findProcesses((argv) => argv[0] === 'containerd-shim-boxd-v2' && argv.includes(cd.address));
}

beforeAll(async () => {
  const dir = await tempDir('bx-cdshim-');
  image = await buildTestImage({ dir });
  // containerd inherits our environment and finds the shim binary through PATH.
  process.env.PATH = `${SHIM_BIN_DIR}:${originalPath}`;
  // The shim's exit after its last task is watched here: a short linger.
  process.env.BOXD_SHIM_IDLE_EXIT_MS = '2000';
  cd = await startContainerd({ dir: join(dir, 'cd') });
  const imported = await cd.ctr(['images', 'import', image.archive]);
  expect(imported.code, imported.stderr).toBe(0);
});

afterAll(async () => {
  process.env.PATH = originalPath;
  delete process.env.BOXD_SHIM_IDLE_EXIT_MS;
  await cd?.stop();
  await cleanupTempDirs();
});

describe('upstream containerd 1.6 with containerd-shim-boxd-v2', () => {
  it('ctr run --rm prints the output and exits 0', async () => {
    const r = await cd.ctr(['run', '--runtime', RUNTIME, '--rm', image.ref, 'hello', 'echo', 'hello']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello\n');
    expect(r.code).toBe(0);
  });

  it("ctr run passes the container's exit status through (exit 3)", async () => {
    const r = await cd.ctr(['run', '--runtime', RUNTIME, '--rm', image.ref, 'three', 'sh', '-c', 'exit 3']);
    expect(r.code, r.stderr).toBe(3);
    // The shim exits after the last task is deleted.
    await waitFor(async () => (await shims()).length === 0, 10_000);
  });

  it('ctr run -d, tasks exec, tasks ls and tasks kill', async () => {
    const started = await cd.ctr(['run', '--runtime', RUNTIME, '-d', image.ref, 'bg', 'sleep', '1000']);
    expect(started.code, started.stderr).toBe(0);
    const exec = await cd.ctr(['tasks', 'exec', '--exec-id', 'e1', 'bg', 'sh', '-c', 'echo from-exec; exit 4']);
    expect(exec.stdout).toBe('from-exec\n');
    expect(exec.code).toBe(4);

    const ls = await cd.ctr(['tasks', 'ls']);
    expect(ls.stdout).toMatch(/^bg\s+\d+\s+RUNNING$/m);
    expect(await shims()).toHaveLength(1);

    const killed = await cd.ctr(['tasks', 'kill', '--signal', 'SIGKILL', 'bg']);
    expect(killed.code, killed.stderr).toBe(0);
    await waitFor(async () => /^bg\s+\d+\s+STOPPED$/m.test((await cd.ctr(['tasks', 'ls'])).stdout), 10_000);
    expect((await cd.ctr(['tasks', 'rm', 'bg'])).code).toBe(0);
    expect((await cd.ctr(['containers', 'rm', 'bg'])).code).toBe(0);
  });
});
