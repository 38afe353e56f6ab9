import { PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { collectingWhenIdle, IdleCollector } from '../src/idle-gc.js';

/** Major collections seen while `fn` runs. */
async function majorCollections(fn: () => Promise<void>): Promise<number> {
  let majors = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e.detail as { kind?: number } | undefined)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    await fn();
    // Entries are delivered asynchronously.
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    observer.disconnect();
  }
  return majors;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('idle collector', () => {
  it('runs one full collection once touches stop, not while they continue', async () => {
    const idle = new IdleCollector(150);
    const whileBusy = await majorCollections(async () => {
      for (let i = 0; i < 5; i++) {
        idle.touch();
        await sleep(50);
      }
    });
    expect(whileBusy).toBe(0);
    const afterwards = await majorCollections(() => sleep(300));
    expect(afterwards).toBeGreaterThanOrEqual(1);
    const quiet = await majorCollections(() => sleep(300));
    expect(quiet).toBe(0);
  });

  it('wraps an implementation so each call touches and still returns what the handler returns', async () => {
    const idle = new IdleCollector(100);
    const impl = collectingWhenIdle({ Echo: async (req: { n: number }) => ({ n: req.n + 1 }) }, idle);
    expect(await impl.Echo({ n: 1 })).toEqual({ n: 2 });
    expect(await majorCollections(() => sleep(250))).toBeGreaterThanOrEqual(1);
  });
});
