/**
 * `delete`: containerd's cleanup after a shim connection closed (containerd 1.6 waits for
 * it on every task removal, so it loads node built-ins only). Force-deletes the runc
 * container, unmounts the rootfs and prints a raw DeleteResponse on stdout: the recorded
 * exit if a shim had reaped it, else 137 (SIGKILL), as upstream reports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeDeleteResponse } from './delete-response.js';
import type { ShimFlags } from './flags.js';
import { groupingPolicy, groupKey, shimSocketPath } from './grouping.js';
import { loadContainer, loadInitExit, nowNanos, ShimRegistry } from './records.js';
import { Runtime, runtimeConfig } from './runc.js';

export const KILLED_EXIT_STATUS = 137;

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function isMountPoint(path: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((line) => line.split(' ')[4] === path);
  } catch {
    return false;
  }
}

export async function deleteCommand(flags: ShimFlags): Promise<Uint8Array> {
  const bundle = flags.bundle || process.cwd();
  const record = loadContainer(bundle);
  const options = readJson<{ binary_name?: string; root?: string }>(join(bundle, 'options.json'));
  const config = record?.runtime ?? runtimeConfig(flags.namespace, { binaryName: options?.binary_name, root: options?.root });
  await new Runtime(config, bundle).delete(flags.id, true).catch(() => {});
  const rootfs = join(bundle, 'rootfs');
  if (isMountPoint(rootfs)) (await import('./mounts.js')).unmountAll(rootfs);
  try {
    const annotations = readJson<{ annotations?: Record<string, string> }>(join(bundle, 'config.json'))?.annotations ?? {};
    const socket = shimSocketPath(flags.address, flags.namespace, groupKey(groupingPolicy(), flags.id, annotations));
    ShimRegistry.forSocket(socket).remove(flags.id);
  } catch {
    // no registry to tidy
  }
  let pid = record?.init.pid ?? 0;
  if (!pid) {
    try {
      pid = Number(readFileSync(join(bundle, 'init.pid'), 'utf8').trim()) || 0;
    } catch {
      pid = 0;
    }
  }
  const exit = record?.init.exit ?? loadInitExit(bundle);
  return encodeDeleteResponse(pid, exit?.status ?? KILLED_EXIT_STATUS, BigInt(exit?.at ?? nowNanos()));
}
