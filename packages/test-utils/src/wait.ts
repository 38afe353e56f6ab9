import { connect } from 'node:net';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown from a waitFor condition to stop waiting at once (e.g. the process being waited on died). */
export class GiveUpError extends Error {
  override name = 'GiveUpError';
}

/**
 * Polls fn until it returns a truthy value (which is returned) or the time is up.
 * Errors thrown by fn count as "not yet" (the last one is reported on timeout), except
 * GiveUpError, which ends the wait immediately.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (e) {
      if (e instanceof GiveUpError) throw e;
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`waitFor: condition not met within ${timeoutMs} ms${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** Resolves true if something accepts connections on the unix socket at path. */
export function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** Waits until a unix socket at path accepts connections. */
export async function waitForSocket(path: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => canConnect(path), timeoutMs);
}

export { sleep };
