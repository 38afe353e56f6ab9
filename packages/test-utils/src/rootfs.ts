import { chmod, copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { runOk } from './exec.js';

const BUSYBOX = '/bin/busybox';

export type FileContent = string | Buffer | { content: string | Buffer; mode?: number };

/** What one image layer changes, relative to the layers below it. */
export interface TestLayer {
  /** Files to create or overwrite: path inside the image -> content (mode 0644 unless given). */
  files?: Record<string, FileContent>;
  /** Directories to create (with parents). */
  dirs?: string[];
  /** Symlinks to create: path inside the image -> link target. */
  symlinks?: Record<string, string>;
  /** Paths to delete; they become whiteouts in this layer. */
  remove?: string[];
}

/** An image path as a host path below rootfs; resolving against "/" first drops any "..". */
function inside(rootfs: string, path: string): string {
  return join(rootfs, resolve('/', path));
}

export async function applyLayer(rootfs: string, layer: TestLayer): Promise<void> {
  for (const path of layer.remove ?? []) {
    await rm(inside(rootfs, path), { recursive: true, force: true });
  }
  for (const path of layer.dirs ?? []) {
    await mkdir(inside(rootfs, path), { recursive: true });
  }
  for (const [path, spec] of Object.entries(layer.files ?? {})) {
    const full = inside(rootfs, path);
    const { content, mode } = typeof spec === 'string' || Buffer.isBuffer(spec) ? { content: spec, mode: 0o644 } : spec;
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
    await chmod(full, mode ?? 0o644);
  }
  for (const [path, target] of Object.entries(layer.symlinks ?? {})) {
    const full = inside(rootfs, path);
    await mkdir(dirname(full), { recursive: true });
    await rm(full, { force: true });
    await symlink(target, full);
  }
}

/**
 * Fills an empty rootfs with a static busybox and its applet links, laid out like the
 * busybox image: enough for sh, echo, ls, cat, sleep, ps, ...
 */
export async function populateBusyboxRootfs(rootfs: string): Promise<void> {
  for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'proc', 'sys', 'dev', 'var', 'run']) {
    await mkdir(join(rootfs, dir), { recursive: true });
  }
  await mkdir(join(rootfs, 'tmp'), { recursive: true });
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await copyFile(BUSYBOX, join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);

  const { stdout } = await runOk(BUSYBOX, ['--list-full']);
  for (const applet of stdout.split('\n').filter(Boolean)) {
    const link = join(rootfs, applet);
    if (applet === 'bin/busybox') continue;
    await mkdir(dirname(link), { recursive: true });
    await rm(link, { force: true });
    await symlink(relative(dirname(link), join(rootfs, 'bin/busybox')), link);
  }
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(rootfs, 'etc/hostname'), 'bb\n');
}
