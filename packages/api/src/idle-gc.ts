/**
 * A full garbage collection once a busy process goes quiet. V8 grows its heap while
 * requests come in and gives the pages back only when it decides to collect; a daemon
 * that then sits idle for hours keeps megabytes of garbage resident. Collecting after a
 * second of quiet costs a few milliseconds when nothing is waiting, and the process
 * holds what it uses.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | undefined;

function gcFunction(): () => void {
  if (!collect) {
    // Exposes gc() to contexts created from now on, without a command-line flag.
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  return collect;
}

export const DEFAULT_IDLE_GC_MS = 1_000;

export class IdleCollector {
  private timer?: NodeJS.Timeout;

  constructor(private readonly idleMs = DEFAULT_IDLE_GC_MS) {}

  /** Work happened: collect once `idleMs` pass without another touch. */
  touch(): void {
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      gcFunction()();
    }, this.idleMs);
    // Never what keeps a process alive.
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The same implementation, each call of which first counts as work for `idle`. */
export function collectingWhenIdle<T extends object>(impl: T, idle: IdleCollector): T {
  const wrapped = Object.entries(impl).map(([name, handler]) => [
    name,
    (...args: unknown[]) => {
      idle.touch();
      return (handler as (...a: unknown[]) => unknown)(...args);
    },
  ]);
  return Object.fromEntries(wrapped) as T;
}
