/**
 * Every process Node spawns for the daemon goes through `spawnHelper`, so the reaper
 * knows to leave its exit to libuv. A helper spawned by Node any other way could have
 * its exit stolen by our waitpid and never report 'exit' to Node. (Runtime calls the
 * daemon vforks itself, launch.ts, are the reaper's own to wait for.)
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const helpers = new Set<number>();

export function spawnHelper(file: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(file, args, options);
  const pid = child.pid;
  if (pid !== undefined) {
    helpers.add(pid);
    child.once('exit', () => helpers.delete(pid));
  }
  return child;
}

export function isHelper(pid: number): boolean {
  return helpers.has(pid);
}

/** Whether libuv has a child of ours to wait for (one not yet reported as exited). */
export function helpersRunning(): boolean {
  return helpers.size > 0;
}
