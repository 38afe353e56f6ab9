/** boxd.metadata.v1.Changes: a notice for every committed write, naming the tables it wrote. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxdMetadata, Code } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { startGcBed, type GcBed } from './bed.js';
import { expectCode, inNs } from './helpers.js';
import { addWrite, ChangeFeed, rowKeyOf, type Writes } from '../src/changes.js';

let bed: GcBed;
beforeAll(async () => {
  bed = await startGcBed();
});
afterAll(() => bed.stop());

type Notice = { generation: { toNumber(): number }; tables: string[]; rows: Array<{ table: string; key: string[] }> };

/** A watch whose notices queue up until the test takes them. */
function watch(address: string) {
  const client = createGrpcClient(boxdMetadata.ChangesService, address);
  const controller = new AbortController();
  const iterator = client.Watch({}, { signal: controller.signal })[Symbol.asyncIterator]();
  return {
    next: async (): Promise<Notice | undefined> => {
      const r = await iterator.next();
      return r.done ? undefined : (r.value as Notice);
    },
    close: () => {
      controller.abort();
      client.close();
    },
  };
}

const address = () => `${bed.h.dir}/md.sock`;
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('Changes.Watch', () => {
  it('sends a first notice at once, then names the tables each write touched', async () => {
    const w = watch(address());
    try {
      const first = await w.next();
      expect(first?.tables).toEqual([]);
      const ns = inNs('changes-1');
      await bed.h.clients.containers.Create({ container: { id: 'c1', runtime: { name: 'r' }, spec: { typeUrl: 't', value: Buffer.from('{}') } } }, ns);
      const afterContainer = await w.next();
      expect(afterContainer?.tables).toContain('containers');
      expect(afterContainer!.generation.toNumber()).toBeGreaterThan(first!.generation.toNumber());
      await bed.h.clients.images.Create({ image: { name: 'img', target: { mediaType: 'm', digest: `sha256:${'a'.repeat(64)}`, size: 1 } } }, ns);
      expect((await w.next())?.tables).toContain('images');
    } finally {
      w.close();
    }
  });

  it('names the rows written, per table', async () => {
    const w = watch(address());
    try {
      await w.next();
      const ns = inNs('changes-rows');
      await bed.h.clients.containers.Create({ container: { id: 'r1', runtime: { name: 'r' }, spec: { typeUrl: 't', value: Buffer.from('{}') } } }, ns);
      const created = await w.next();
      expect(created?.tables).toContain('containers');
      expect(created?.rows.filter((r) => r.table === 'containers').map((r) => r.key)).toEqual([[ns.namespace!, 'r1']]);
      await bed.h.clients.containers.Delete({ id: 'r1' }, ns);
      const deleted = await w.next();
      expect(deleted?.rows).toEqual([{ table: 'containers', key: [ns.namespace!, 'r1'] }]);

    } finally {
      w.close();
    }
  });

  it('loses no write: the notices a late reader gets cover every table written', async () => {
    const w = watch(address());
    try {
      await w.next();
      const ns = inNs('changes-2');
      await bed.h.clients.leases.Create({ id: 'l1' }, ns);
      await bed.core.writeBlob(ns, 'blob-1', Buffer.from('changes blob'), { 'containerd.io/gc.root': '1' });
      await bed.h.clients.containers.Create({ container: { id: 'c2', runtime: { name: 'r' }, spec: { typeUrl: 't', value: Buffer.from('{}') } } }, ns);
      await settle();
      const seen = new Set<string>();
      for (let i = 0; i < 10 && !['leases', 'content', 'containers'].every((t) => seen.has(t)); i++) {
        const notice = await Promise.race([w.next(), new Promise<undefined>((r) => setTimeout(r, 1000))]);
        for (const t of notice?.tables ?? []) seen.add(t);
      }
      expect([...seen]).toEqual(expect.arrayContaining(['leases', 'content', 'containers']));
    } finally {
      w.close();
    }
  });

  it('sends nothing for a write that fails before writing', async () => {
    const w = watch(address());
    try {
      await w.next();
      const ns = inNs('changes-3');
      const container = { id: 'c3', runtime: { name: 'r' }, spec: { typeUrl: 't', value: Buffer.from('{}') } };
      await bed.h.clients.containers.Create({ container }, ns);
      expect((await w.next())?.tables).toContain('containers');
      await expectCode(bed.h.clients.containers.Create({ container }, ns), Code.ALREADY_EXISTS);
      await bed.h.clients.leases.Create({ id: 'marker' }, ns);
      expect((await w.next())?.tables).toEqual(['leases']);
    } finally {
      w.close();
    }
  });

  it('names content when garbage collection removes a blob', async () => {
    const ns = inNs('changes-4');
    const digest = await bed.core.writeBlob(ns, 'doomed', Buffer.from('collect me'));
    const w = watch(address());
    try {
      await w.next();
      await bed.h.clients.gc.Collect({});
      const seen = new Set<string>();
      for (let n = await w.next(); n; n = seen.has('content') ? undefined : await w.next()) for (const t of n.tables) seen.add(t);
      expect(seen.has('content')).toBe(true);
      await expectCode(bed.h.clients.content.Info({ digest }, ns), Code.NOT_FOUND);
    } finally {
      w.close();
    }
  });

  it('leaves no watcher behind when clients go away', async () => {
    for (let i = 0; i < 20; i++) {
      const w = watch(address());
      await w.next();
      w.close();
    }
    await expect.poll(() => bed.h.instance.metadata.changes.watching, { timeout: 3000 }).toBe(0);
  });
});

describe('stopping the plugin', () => {
  it('ends open watches, so the stop does not wait for them', async () => {
    const { startMetadata } = await import('./helpers.js');
    const h = await startMetadata();
    const w = watch(`${h.dir}/md.sock`);
    await w.next();
    const started = Date.now();
    const ended = w.next();
    await h.stop();
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await ended.catch(() => undefined)).toBeUndefined();
    w.close();
  });
});

describe('Watcher', () => {
  const signal = new AbortController().signal;

  it('gathers the rows of several commits, and a table written whole or in too many rows as a whole', async () => {
    const feed = new ChangeFeed();
    const w = feed.watch();
    const writes = (table: string, rows: Array<string[] | undefined>): Writes => {
      const out: Writes = new Map();
      for (const row of rows) addWrite(out, table, row);
      return out;
    };
    feed.changed(writes('containers', [['ns', 'a']]));
    feed.changed(writes('containers', [['ns', 'b'], ['ns', 'a']]));
    feed.changed(writes('images', [['ns', 'i']]));
    feed.changed(writes('images', [undefined]));
    feed.changed(writes('leases', Array.from({ length: 65 }, (_, i) => ['ns', `l${i}`])));
    const notice = await w.next(signal);
    expect(notice?.tables.sort()).toEqual(['containers', 'images', 'leases']);
    expect(notice?.rows).toEqual([
      { table: 'containers', key: ['ns', 'a'] },
      { table: 'containers', key: ['ns', 'b'] },
    ]);
    w.close();
  });

  it('wakes a waiting watch on the next turn of the event loop, after the writer has answered', async () => {
    const feed = new ChangeFeed();
    const w = feed.watch();
    let notice: Awaited<ReturnType<typeof w.next>>;
    const next = w.next(signal).then((n) => (notice = n));
    await Promise.resolve();
    const written: Writes = new Map();
    addWrite(written, 'leases', ['ns', 'l']);
    feed.changed(written);
    // What the writer does next within this turn (answering its call) comes first.
    for (let i = 0; i < 50; i++) await Promise.resolve();
    expect(notice).toBeUndefined();
    await next;
    expect(notice?.rows).toEqual([{ table: 'leases', key: ['ns', 'l'] }]);
    w.close();
  });

  it('takes string and string-array keys as rows, nothing else', () => {
    expect(rowKeyOf('ns')).toEqual(['ns']);
    expect(rowKeyOf(['ns', 'id'])).toEqual(['ns', 'id']);
    expect(rowKeyOf(['ns', 3])).toBeUndefined();
    expect(rowKeyOf(7)).toBeUndefined();
  });
});
