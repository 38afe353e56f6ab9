/**
 * Deleting a stopped runc container without running `runc delete`.
 *
 * For a container whose init has exited, `runc delete` reads
 * `<root>/<id>/state.json`, removes the container's cgroup directories, removes
 * that state directory and runs the poststop hooks. Starting a Go binary for that
 * costs ~4 ms of every `ctr run --rm`; the shim, which reaped init itself, does it
 * in well under one.
 *
 * Only for runc itself, and only the plain case: no poststop hooks, the
 * container's own PID namespace (so its processes died with init; in a shared one
 * runc would kill what is left in the cgroup first), cgroupfs rather than systemd,
 * not rootless, no Intel RDT group. Anything else, and any failure on the way
 * (a cgroup still busy, say, where runc retries), leaves the delete to runc,
 * which finds whatever is left and finishes it.
 */
import { readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isRunc } from './runc-binary.js';

interface RuncState {
  cgroup_paths?: Record<string, string>;
  intel_rdt_path?: string;
  rootless?: boolean;
  config?: {
    namespaces?: Array<{ type: string; path?: string }>;
    hooks?: { poststop?: unknown[] } | null;
    cgroups?: { Systemd?: boolean; Rootless?: boolean } | null;
    rootless_cgroups?: boolean;
  };
}

function readState(dir: string): RuncState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as RuncState;
  } catch {
    return undefined;
  }
}

/** What runc would do beyond removing cgroups and the state dir. */
function needsRunc(state: RuncState): boolean {
  const config = state.config;
  if (!config) return true;
  const ownPidNamespace = config.namespaces?.some((ns) => ns.type === 'NEWPID' && !ns.path) ?? false;
  return (
    !ownPidNamespace ||
    (config.hooks?.poststop?.length ?? 0) > 0 ||
    Boolean(config.cgroups?.Systemd) ||
    Boolean(config.cgroups?.Rootless || config.rootless_cgroups || state.rootless) ||
    Boolean(state.intel_rdt_path)
  );
}

/** rmdir, treating a directory already gone as removed. */
function rmdirGone(path: string): void {
  try {
    rmdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** A cgroup and the child cgroups below it, deepest first (a cgroup's files cannot be unlinked, only its directories). */
function removeCgroup(path: string): void {
  try {
    rmdirGone(path);
    return;
  } catch {
    // Not empty: children first.
  }
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroup(join(path, entry.name));
  }
  rmdirGone(path);
}

/**
 * Deletes runc container `id` under `root`, whose init has exited, as
 * `runc delete` would; false (nothing left half done that runc cannot finish)
 * when runc should be asked instead.
 */
export function deleteStopped(binary: string, root: string, id: string): boolean {
  if (!isRunc(binary)) return false;
  const dir = join(root, id);
  const state = readState(dir);
  if (!state || needsRunc(state)) return false;
  try {
    // Co-mounted controllers (cpu,cpuacct) name one directory twice.
    for (const path of new Set(Object.values(state.cgroup_paths ?? {}))) removeCgroup(path);
  } catch {
    return false;
  }
  rmSync(dir, { recursive: true, force: true });
  return true;
}
