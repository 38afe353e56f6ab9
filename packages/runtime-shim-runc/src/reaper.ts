/**
 * Exit reaping for a child subreaper that also starts helpers (runc, mount, loggers).
 *
 * Container processes are reparented to the shim once runc exits, and the runtime calls
 * are vforked (launch.ts): none of them are libuv's children, so libuv never waits for
 * them. On SIGCHLD, while no helper Node spawned (see spawn.ts) is running, we reap
 * whatever has exited with waitpid(-1): the cost is per exit, not per child, which
 * matters to a shim with hundreds of containers (a scan of 1000 children took ~1.2 ms
 * per signal here). While a helper runs, libuv must reap it itself: then we list our
 * children from /proc/self/task/* /children and waitpid() each one that is not a helper.
 * An exit reaped before its pid is known (a process that dies while `runc create` is
 * still running) is kept for any open `ExitWindow` to claim.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { becomeChildSubreaper, waitNoHang } from './native.js';
import { helpersRunning, isHelper } from './spawn.js';

export type ExitHandler = (waitStatus: number) => void;

export interface ExitWindow {
  /** The wait status of pid if it was reaped while this window was open. */
  claim(pid: number): number | undefined;
  close(): void;
}

export class Reaper {
  private readonly handlers = new Map<number, ExitHandler>();
  private readonly windows = new Set<Map<number, number>>();
  private started = false;

  /** Becomes a subreaper and starts handling SIGCHLD. */
  start(): void {
    if (this.started) return;
    this.started = true;
    becomeChildSubreaper();
    process.on('SIGCHLD', () => this.reap());
  }

  /** Opens before starting a process whose pid is learnt later (runc create/exec). */
  openWindow(): ExitWindow {
    const exits = new Map<number, number>();
    this.windows.add(exits);
    return {
      claim: (pid) => exits.get(pid),
      close: () => this.windows.delete(exits),
    };
  }

  /** Calls handler once with the wait status of pid, a child of ours. */
  watch(pid: number, handler: ExitHandler, window?: ExitWindow): void {
    const early = window?.claim(pid);
    if (early !== undefined) {
      queueMicrotask(() => handler(early));
      return;
    }
    this.handlers.set(pid, handler);
    this.reapOne(pid);
  }

  unwatch(pid: number): void {
    this.handlers.delete(pid);
  }

  reap(): void {
    if (!helpersRunning()) {
      while (this.reapOne(-1));
      return;
    }
    for (const pid of this.children()) {
      if (!isHelper(pid)) this.reapOne(pid);
    }
  }

  /** waitpid(pid, WNOHANG), -1 for any child, and the exit handed on; false when nothing was reaped. */
  private reapOne(pid: number): boolean {
    let result;
    try {
      result = waitNoHang(pid);
    } catch {
      return false;
    }
    if (typeof result === 'string') return false;
    const handler = this.handlers.get(result.pid);
    if (handler) {
      this.handlers.delete(result.pid);
      handler(result.status);
    } else {
      for (const exits of this.windows) exits.set(result.pid, result.status);
    }
    return true;
  }

  private children(): number[] {
    const pids: number[] = [];
    let tasks: string[];
    try {
      tasks = readdirSync('/proc/self/task');
    } catch {
      return pids;
    }
    for (const task of tasks) {
      let text = '';
      try {
        text = readFileSync(`/proc/self/task/${task}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const word of text.split(' ')) if (word.trim()) pids.push(Number(word));
    }
    return pids;
  }
}
