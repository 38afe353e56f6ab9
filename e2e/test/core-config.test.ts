/** boxd's config: the default, the plugin modes (exec, in_process, address, disabled) and upstream's proxy_plugins form. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { buildTestImage, removeDir, run, spawnDaemon, startBoxd, tempDir, waitForSocket, boxdBin, type Boxd, type Daemon, type TestImage } from '@boxd/test-utils';

let dir: string;
let image: TestImage;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  dir = await tempDir('bx-cfg-');
  image = await buildTestImage({ dir: join(dir, 'img') });
}, 120_000);

afterAll(async () => {
  await removeDir(dir);
});

describe('boxd config default', () => {
  it('prints a TOML config with every plugin as a supervised child', async () => {
    const res = await run(process.execPath, [boxdBin(), 'config', 'default']);
    expect(res.code).toBe(0);
    for (const id of ['content', 'metadata', 'overlayfs', 'native', 'diff', 'events']) expect(res.stdout).toMatch(new RegExp(`\\[plugins\\.${id}\\]`));
    expect(res.stdout).toMatch(/exec = \[ "boxd-content-store" \]/);
  });

  it('refuses a broken config with a clear message', async () => {
    const cfg = join(dir, 'bad.toml');
    await import('node:fs/promises').then((fs) => fs.writeFile(cfg, '[plugins.content]\ntype = "contents"\n'));
    const res = await run(process.execPath, [boxdBin(), '--config', cfg, '--root', join(dir, 'bad-root'), '--state', join(dir, 'bad-state'), '--address', join(dir, 'bad.sock')]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/plugins\.content\.type must be one of/);
  });
});

describe('plugin modes and proxy plugins', () => {
  let boxd: Boxd;
  let external: Daemon;
  let metricsPort: number;

  beforeAll(async () => {
    const extSock = join(dir, 'ext-grpc.sock');
    const extBin = join(boxdBin(), '../../../snapshotter-overlay/dist/bin.js');
    external = spawnDaemon(process.execPath, [extBin, '--grpc-address', extSock, '--root', join(dir, 'ext-root')], join(dir, 'ext.log'));
    await waitForSocket(extSock, 20_000);
    metricsPort = await freePort();
    boxd = await startBoxd({
      dir: join(dir, 'boxd'),
      config: `
[metrics]
address = "127.0.0.1:${metricsPort}"
[plugins.content]
type = "content"
in_process = true
[plugins.metadata]
type = "metadata"
[plugins.diff]
type = "diff"
[plugins.events]
type = "events"
[plugins.native]
type = "snapshot"
[plugins.overlayfs]
type = "snapshot"
disabled = true
[proxy_plugins.extsnap]
type = "snapshot"
address = "${extSock}"
`,
    });
  }, 120_000);

  afterAll(async () => {
    await boxd?.stop();
    await external?.stop();
  }, 60_000);

  it('lists proxy and in-process plugins, not disabled ones', async () => {
    const res = await boxd.ctr(['plugins', 'ls']);
    expect(res.stdout).toMatch(/io\.containerd\.snapshotter\.v1\s+extsnap\s.*ok/);
    expect(res.stdout).toMatch(/io\.containerd\.content\.v1\s+content\s.*ok/);
    expect(res.stdout).not.toMatch(/overlayfs/);
    // in_process: no child process for content.
    expect((await readdir(join(boxd.state, 'plugins'))).filter((f) => f === 'content.pid')).toEqual([]);
  });

  it('unpacks into an upstream-style gRPC proxy snapshotter', async () => {
    const imp = await boxd.ctr(['images', 'import', '--snapshotter', 'extsnap', image.archive]);
    expect(imp.code, imp.stderr).toBe(0);
    const snaps = await boxd.ctr(['snapshots', '--snapshotter', 'extsnap', 'ls']);
    expect(snaps.stdout).toMatch(/Committed/);
    const backendDirs = await readdir(join(dir, 'ext-root', 'snapshots'));
    expect(backendDirs.length).toBeGreaterThanOrEqual(1);
    const none = await boxd.ctr(['snapshots', '--snapshotter', 'overlayfs', 'ls']);
    expect(none.code).not.toBe(0);
  });

  it('native snapshotter works by its upstream name', async () => {
    const imp = await boxd.ctr(['images', 'import', '--snapshotter', 'native', image.archive]);
    expect(imp.code, imp.stderr).toBe(0);
    expect((await boxd.ctr(['snapshots', '--snapshotter', 'native', 'ls'])).stdout).toMatch(/Committed/);
  });

  it('serves Prometheus metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await res.text();
    // ctr's import tries Images/Update first and creates on NOT_FOUND.
    expect(text).toMatch(/boxd_grpc_requests_total\{service="containerd\.services\.images\.v1\.Images",method="Create"\} [1-9]/);
    expect(text).toMatch(/boxd_grpc_errors_total\{service="containerd\.services\.images\.v1\.Images",method="Update",code="5"\} [1-9]/);
    expect(text).toMatch(/boxd_grpc_request_duration_seconds_bucket/);
    expect(text).toMatch(/boxd_process_resident_memory_bytes/);
    expect(text).toMatch(/# TYPE boxd_plugin_restarts_total counter/);
  });
});
