import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { sleep } from './wait.js';

export interface ProcessInfo {
  pid: number;
  argv: string[];
}

/** Every process whose argv (from /proc) satisfies the predicate. */
export async function findProcesses(match: (argv: string[]) => boolean): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const raw = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      const argv = raw.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
      if (argv.length && match(argv)) found.push({ pid: Number(entry), argv });
    } catch {
      // the process exited while we were looking
    }
  }
  return found;
}

/** True while pid exists and is not a zombie (a zombie is dead, just not reaped yet). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state letter follows the command name, which is in parentheses and may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Sends SIGTERM, waits up to graceMs, then SIGKILL; resolves once the pid is gone (or after 5 s more). */
export async function terminate(pid: number, graceMs = 5_000): Promise<void> {
  const until = (ms: number) => Date.now() + ms;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (const deadline = until(graceMs); Date.now() < deadline; await sleep(25)) {
    if (!isAlive(pid)) return;
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (const deadline = until(5_000); Date.now() < deadline; await sleep(25)) {
    if (!isAlive(pid)) return;
  }
}
