/**
 * Which containers share one shim process, and where that shim listens.
 *
 * containerd runs `start` once per task; the shim decides whether an already running
 * shim serves the new task. The socket path is a hash of containerd's address, the
 * namespace and the group key, so every `start` of the same group finds the same socket.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export type GroupingPolicy = 'per-container' | 'per-sandbox' | 'per-namespace';

export const GROUPING_ENV = 'BOXD_SHIM_GROUPING';
export const SOCKET_DIR_ENV = 'BOXD_SHIM_SOCKET_DIR';
export const DEFAULT_SOCKET_DIR = '/run/containerd/s';

/** Upstream's grouping annotations, first match wins. */
export const GROUP_ANNOTATIONS = ['io.containerd.runc.v2.group', 'io.kubernetes.cri.sandbox-id'] as const;

// '#' cannot occur in a containerd identifier, so this key never equals a task id.
const NAMESPACE_KEY = '#namespace';

export function groupingPolicy(env: NodeJS.ProcessEnv = process.env): GroupingPolicy {
  const value = env[GROUPING_ENV] || 'per-namespace';
  if (value === 'per-container' || value === 'per-sandbox' || value === 'per-namespace') return value;
  throw new Error(`${GROUPING_ENV}=${value}: expected per-container, per-sandbox or per-namespace`);
}

export function groupKey(policy: GroupingPolicy, id: string, annotations: Record<string, string> = {}): string {
  if (policy === 'per-container') return id;
  if (policy === 'per-namespace') return NAMESPACE_KEY;
  for (const name of GROUP_ANNOTATIONS) if (annotations[name]) return annotations[name];
  return id;
}

/** `unix://<dir>/<sha256(address/namespace/key)>`, as upstream names its sockets. */
export function shimSocketPath(containerdAddress: string, namespace: string, key: string, env: NodeJS.ProcessEnv = process.env): string {
  const digest = createHash('sha256').update(`${containerdAddress}/${namespace}/${key}`).digest('hex');
  const path = join(env[SOCKET_DIR_ENV] || DEFAULT_SOCKET_DIR, digest);
  if (Buffer.byteLength(path) > 106) throw new Error(`shim socket path ${path} is too long`);
  return path;
}
