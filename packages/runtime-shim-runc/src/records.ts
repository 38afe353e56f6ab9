/**
 * What the shim keeps on disk, so a restarted shim can carry on:
 * - per container, `<bundle>/boxd-shim.json`: runtime settings, stdio, the rootfs mount
 *   state and every process with its pid, start time and, once reaped, its exit status;
 * - per shim, a directory listing the bundles it serves (one file per container id).
 * Files are replaced atomically (write + rename), synchronously, so an exit status is
 * on disk before anything about it is published.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RuntimeConfig } from './runc.js';
import type { StdioSpec } from './stdio.js';

export const RECORD_FILE = 'boxd-shim.json';
export const STATE_DIR_ENV = 'BOXD_SHIM_STATE_DIR';
export const DEFAULT_STATE_DIR = '/run/boxd/shim';

export type ProcessStatus = 'created' | 'running' | 'paused' | 'stopped';

export interface ExitRecord {
  status: number;
  /** Nanoseconds since the epoch, as a decimal string (exact). */
  at: string;
}

export interface ProcessRecord {
  execId: string;
  pid: number;
  /** /proc/<pid>/stat start time: tells our process from a later one with the same pid. */
  startTime: string;
  status: ProcessStatus;
  stdio: StdioSpec;
  exit?: ExitRecord;
  /** Last signal we sent, for the exit status of a process we can no longer wait for. */
  lastSignal?: number;
}

export interface ContainerRecord {
  version: 1;
  id: string;
  namespace: string;
  bundle: string;
  runtime: RuntimeConfig;
  rootfsMounted: boolean;
  init: ProcessRecord;
  execs: Record<string, ProcessRecord>;
}

function writeAtomically(path: string, data: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * `<bundle>/init.exit`: "<status> <nanos>" of the init process, next to runc's init.pid,
 * for the `delete` command (the shell entry reads it without a JSON parser).
 */
export function saveInitExit(bundle: string, exit: ExitRecord): void {
  writeAtomically(join(bundle, 'init.exit'), `${exit.status} ${exit.at}`);
}

export function loadInitExit(bundle: string): ExitRecord | undefined {
  try {
    const [status, at] = readFileSync(join(bundle, 'init.exit'), 'utf8').trim().split(' ');
    if (!/^\d+$/.test(status ?? '') || !/^\d+$/.test(at ?? '')) return undefined;
    return { status: Number(status), at: at! };
  } catch {
    return undefined;
  }
}

export function saveContainer(record: ContainerRecord): void {
  writeAtomically(join(record.bundle, RECORD_FILE), JSON.stringify(record));
}

export function loadContainer(bundle: string): ContainerRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(bundle, RECORD_FILE), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
}

/** The list of bundles one shim serves; survives the shim for its successor. */
export class ShimRegistry {
  constructor(readonly dir: string) {}

  static forSocket(socketPath: string, env: NodeJS.ProcessEnv = process.env): ShimRegistry {
    const name = socketPath.slice(socketPath.lastIndexOf('/') + 1);
    return new ShimRegistry(join(env[STATE_DIR_ENV] || DEFAULT_STATE_DIR, name));
  }

  add(id: string, bundle: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeAtomically(join(this.dir, id), bundle);
  }

  remove(id: string): void {
    rmSync(join(this.dir, id), { force: true });
  }

  entries(): { id: string; bundle: string }[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: { id: string; bundle: string }[] = [];
    for (const id of names) {
      if (id.endsWith('.tmp')) continue;
      try {
        out.push({ id, bundle: readFileSync(join(this.dir, id), 'utf8') });
      } catch {
        // removed meanwhile
      }
    }
    return out;
  }

  /** `<dir>.pid`: lets the shell entry see that this group's daemon is alive. */
  get pidFile(): string {
    return `${this.dir}.pid`;
  }

  writePid(pid: number): void {
    mkdirSync(dirname(this.dir), { recursive: true, mode: 0o700 });
    writeAtomically(this.pidFile, String(pid));
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.pidFile, { force: true });
  }
}

/** Field 22 of /proc/<pid>/stat, or undefined if there is no such live process. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

export function nowNanos(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}
