/**
 * A full garbage collection once a busy process goes quiet. V8 grows its heap while
 * requests come in and gives the pages back only when it decides to collect; a daemon
 * that then sits idle for hours keeps megabytes of garbage resident. Collecting after a
 * second of quiet costs a few milliseconds when nothing is waiting, and the process
 * holds what it uses.
 */
import { Session } from 'node:inspector';

/**
 * V8's low-memory collection, the one its memory reducer runs after a process has
 * been quiet for a while: it compacts, shrinks the young generation and unmaps freed
 * pages. A plain gc() does none of that and gives hardly anything back. It is reached
 * through an in-process inspector session (no port is opened).
 */
function collectLowMemory(): void {
  const session = new Session();
  session.connect();
  // Disconnecting from inside the session's own callback hangs the process.
  session.post('HeapProfiler.collectGarbage', () => setImmediate(() => session.disconnect()));
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
      collectLowMemory();
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
