import { PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { collectingWhenIdle, IdleCollector } from '../src/idle-gc.js';
import { content, tasks, type ServiceImplementation } from '../src/index.js';

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
    const impl = collectingWhenIdle(content.ContentService, { Info: async (req: { digest: string }) => ({ info: { digest: req.digest } }) } as never, idle) as ServiceImplementation<typeof content.ContentService>;
    expect(await impl.Info({ digest: 'sha256:x' } as never, {} as never)).toEqual({ info: { digest: 'sha256:x' } });
    expect(await majorCollections(() => sleep(250))).toBeGreaterThanOrEqual(1);
  });

  it('collects nothing while a unary or bidi call is at work, and collects after it', async () => {
    const idle = new IdleCollector(100);
    const impl = collectingWhenIdle(
      content.ContentService,
      {
        Info: async () => (await sleep(400), { info: {} }),
        async *Write(requests: AsyncIterable<unknown>) {
          for await (const _ of requests) yield {};
        },
      } as never,
      idle,
    ) as ServiceImplementation<typeof content.ContentService>;
    expect(await majorCollections(() => impl.Info({} as never, {} as never).then(() => undefined))).toBe(0);
    expect(await majorCollections(() => sleep(250))).toBeGreaterThanOrEqual(1);

    async function* slowRequests() {
      for (let i = 0; i < 4; i++) {
        await sleep(100);
        yield {};
      }
    }
    const during = await majorCollections(async () => {
      for await (const _ of impl.Write(slowRequests() as never, {} as never) as AsyncIterable<unknown>);
    });
    expect(during).toBe(0);
    expect(await majorCollections(() => sleep(250))).toBeGreaterThanOrEqual(1);
  });

  it('an open server stream or a Wait does not hold collection off', async () => {
    const idle = new IdleCollector(100);
    let endStream!: () => void;
    const streamOver = new Promise<void>((r) => (endStream = r));
    const impl = collectingWhenIdle(
      content.ContentService,
      {
        async *Read() {
          yield { data: Buffer.from('x') };
          await streamOver;
        },
      } as never,
      idle,
    ) as ServiceImplementation<typeof content.ContentService>;
    const reading = (async () => {
      for await (const _ of impl.Read({} as never, {} as never) as AsyncIterable<unknown>);
    })();
    expect(await majorCollections(() => sleep(300))).toBeGreaterThanOrEqual(1);
    endStream();
    await reading;

    const waiting = collectingWhenIdle(tasks.TasksService, { Wait: () => sleep(400).then(() => ({})) } as never, idle) as ServiceImplementation<typeof tasks.TasksService>;
    expect(await majorCollections(() => waiting.Wait({} as never, {} as never).then(() => undefined))).toBeGreaterThanOrEqual(1);
  });
});
