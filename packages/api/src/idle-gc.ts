/**
 * A full garbage collection once a busy process goes quiet. V8 grows its heap while
 * requests come in and gives the pages back only when it decides to collect; a daemon
 * that then sits idle for hours keeps megabytes of garbage resident. Collecting after a
 * second of quiet costs a few milliseconds when nothing is waiting, and the process
 * holds what it uses.
 */
import { Session } from 'node:inspector';
import { methodShape, type ServiceDefinition, type ServiceImplementation } from './service.js';

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
  /** Calls working now: nothing is collected under them. */
  private working = 0;

  constructor(private readonly idleMs = DEFAULT_IDLE_GC_MS) {}

  /** Work happened: collect once `idleMs` pass without another touch or call at work. */
  touch(): void {
    if (this.working > 0) return;
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

  /**
   * A call is at work (staging a layer, taking an upload): a collection in the middle
   * of it would stop the process for as long as a full compacting GC takes. The result
   * lets go; the quiet time starts then.
   */
  hold(): () => void {
    this.working++;
    this.stop();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.working--;
      this.touch();
    };
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

type Handler = (...args: unknown[]) => unknown;

/** Methods that wait for something to happen rather than work: holding for them would never let go. */
const WAITING = new Set(['Wait']);

function touchingEach(messages: AsyncIterable<unknown>, idle: IdleCollector): AsyncIterable<unknown> {
  return (async function* () {
    for await (const message of messages) {
      idle.touch();
      yield message;
    }
  })();
}

function releasingAfter(messages: AsyncIterable<unknown>, release: () => void): AsyncIterable<unknown> {
  return (async function* () {
    try {
      yield* messages;
    } finally {
      release();
    }
  })();
}

function heldFor(handler: Handler, idle: IdleCollector, streaming: boolean): Handler {
  return (...args) => {
    const release = idle.hold();
    try {
      const out = handler(...args);
      if (streaming) return releasingAfter(out as AsyncIterable<unknown>, release);
      return Promise.resolve(out).finally(release);
    } catch (err) {
      release();
      throw err;
    }
  };
}

/**
 * The same implementation, its calls counted as work for `idle`: unary, client-streaming
 * and bidi calls hold off collection until they end; server streams (subscriptions,
 * reads) and waits touch when they start and at each message, so one left open does not
 * keep a process from collecting.
 */
export function collectingWhenIdle<S extends ServiceDefinition>(def: S, impl: ServiceImplementation<S>, idle: IdleCollector): ServiceImplementation<S> {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(def.methods)) {
    const handler = (impl as Record<string, Handler | undefined>)[name];
    if (!handler) continue;
    const shape = methodShape(method);
    if (shape === 'server-stream') {
      out[name] = (...args: unknown[]) => {
        idle.touch();
        return touchingEach(handler(...args) as AsyncIterable<unknown>, idle);
      };
    } else if (WAITING.has(name)) {
      out[name] = (...args: unknown[]) => {
        idle.touch();
        return handler(...args);
      };
    } else {
      out[name] = heldFor(handler, idle, shape === 'bidi');
    }
  }
  return out as ServiceImplementation<S>;
}
