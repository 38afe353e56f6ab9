import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** A long-running child process whose stdout and stderr are appended to a log file. */
export interface Daemon {
  child: ChildProcess;
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  running(): boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

export function spawnDaemon(file: string, args: readonly string[], logPath: string): Daemon {
  const logFd = openSync(logPath, 'a');
  const child = spawn(file, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  // A failed spawn emits 'error' instead of 'exit'; callers see it through running().
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let failed = false;
  child.once('error', () => (failed = true));
  const running = () => !failed && child.exitCode === null && child.signalCode === null;
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5_000) =>
    (stopping ??= (async () => {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    })());
  return { child, pid: child.pid ?? -1, exited, running, stop };
}
