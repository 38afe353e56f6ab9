/** The core's cache of metadata answers: what it keeps, and when it must let go. */
import { describe, expect, it } from 'vitest';
import { containers, content, images, leases } from '@boxd/api';
import { ReadCache } from '../src/read-cache.js';

const CONTAINERS = 'containerd.services.containers.v1.Containers';
const IMAGES = 'containerd.services.images.v1.Images';
const CONTENT = 'boxd.metadata.v1.ContentIndex';
const LEASES = 'containerd.services.leases.v1.Leases';

/** A notice stream the test pushes into. */
type Notice = { tables?: string[]; rows?: Array<{ table: string; key: string[] }> };

class Notices implements AsyncIterable<Notice> {
  private queue: Notice[] = [];
  private wake?: () => void;
  private ended = false;
  private failure?: Error;

  push(tables: string[] = [], rows: Notice['rows'] = []): void {
    this.queue.push({ tables, rows });
    this.wake?.();
  }

  end(failure?: Error): void {
    this.ended = true;
    this.failure = failure;
    this.wake?.();
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** The plugin's side: answers from a map the test changes, counting calls. */
class Backend {
  readonly data = new Map<string, string>();
  calls = 0;

  send(key: string) {
    return async () => {
      this.calls++;
      await Promise.resolve();
      return Buffer.from(this.data.get(key) ?? '');
    };
  }
}

/** A backend already holding `data`. */
function backendWith(data: Record<string, string>): Backend {
  const backend = new Backend();
  for (const [key, value] of Object.entries(data)) backend.data.set(key, value);
  return backend;
}

const settle = () => new Promise((r) => setTimeout(r, 0));
const req = (s: string) => Buffer.from(s);
const containerId = (id: string) => containers.GetContainerRequest.encode({ id });
const containerUpdate = (id: string) => containers.UpdateContainerRequest.encode({ container: { id } as containers.Container });

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function liveCache() {
  const cache = new ReadCache();
  const notices = new Notices();
  void cache.follow(notices);
  notices.push();
  await settle();
  return { cache, notices };
}

const get = (cache: ReadCache, backend: Backend, key: string, ns = 'ns') =>
  cache.call(CONTAINERS, 'Get', ns, containerId(key), backend.send(key)).then(String);
const info = (cache: ReadCache, backend: Backend, key: string) => cache.call(CONTENT, 'Info', 'ns', content.InfoRequest.encode({ digest: key }), backend.send(key)).then(String);

describe('ReadCache', () => {
  it('keeps nothing before the first notice', async () => {
    const cache = new ReadCache();
    const backend = new Backend();
    backend.data.set('c1', 'v1');
    void cache.follow(new Notices());
    await get(cache, backend, 'c1');
    await get(cache, backend, 'c1');
    expect(backend.calls).toBe(2);
    expect(cache.size).toBe(0);
  });

  it('answers a repeated read from memory, per namespace and request', async () => {
    const { cache } = await liveCache();
    const backend = new Backend();
    backend.data.set('c1', 'v1');
    expect(await get(cache, backend, 'c1')).toBe('v1');
    expect(await get(cache, backend, 'c1')).toBe('v1');
    expect(backend.calls).toBe(1);
    await get(cache, backend, 'c1', 'other');
    expect(backend.calls).toBe(2);
  });

  it('a notice drops the answers of the tables it names, and only those', async () => {
    const { cache, notices } = await liveCache();
    const backend = backendWith({ c1: 'v1', d1: 'blob' });
    await get(cache, backend, 'c1');
    await info(cache, backend, 'd1');
    backend.data.set('c1', 'v2');
    notices.push(['containers']);
    await settle();
    expect(await get(cache, backend, 'c1')).toBe('v2');
    expect(await info(cache, backend, 'd1')).toBe('blob');
    expect(backend.calls).toBe(3);
  });

  it('a write drops its tables when sent and when it returns, and an answer read meanwhile is not kept', async () => {
    const { cache } = await liveCache();
    const backend = new Backend();
    backend.data.set('c1', 'old');
    await get(cache, backend, 'c1');

    const writeDone = deferred<Buffer>();
    const write = cache.call(CONTAINERS, 'Update', 'ns', containerUpdate('c1'), () => writeDone.promise);
    // Read while the write is in flight: the plugin may answer from before or after it.
    expect(await get(cache, backend, 'c1')).toBe('old');
    backend.data.set('c1', 'new');
    writeDone.resolve(Buffer.from(''));
    await write;
    expect(await get(cache, backend, 'c1')).toBe('new');
    expect(await get(cache, backend, 'c1')).toBe('new');
    expect(backend.calls).toBe(3);
  });

  it('an answer asked for during a write and answered after it returns is not kept', async () => {
    const { cache } = await liveCache();
    const writeDone = deferred<Buffer>();
    const write = cache.call(CONTAINERS, 'Update', 'ns', containerUpdate('c1'), () => writeDone.promise);
    const answer = deferred<Buffer>();
    const read = cache.call(CONTAINERS, 'Get', 'ns', containerId('c1'), () => answer.promise);
    writeDone.resolve(Buffer.from(''));
    await write;
    // The plugin read before the write committed.
    answer.resolve(Buffer.from('before the write'));
    await read;
    const backend = new Backend();
    backend.data.set('c1', 'after the write');
    expect(await get(cache, backend, 'c1')).toBe('after the write');
  });

  it('an answer in flight when a notice for its table arrives is not kept', async () => {
    const { cache, notices } = await liveCache();
    const answer = deferred<Buffer>();
    let calls = 0;
    const read = cache.call(CONTAINERS, 'Get', 'ns', containerId('c1'), () => (calls++, answer.promise));
    notices.push(['containers']);
    await settle();
    answer.resolve(Buffer.from('stale'));
    expect(String(await read)).toBe('stale');
    const backend = new Backend();
    backend.data.set('c1', 'fresh');
    expect(await get(cache, backend, 'c1')).toBe('fresh');
    expect(backend.calls).toBe(1);
  });

  it('a write to another table does not stop an answer being kept', async () => {
    const { cache } = await liveCache();
    const backend = new Backend();
    backend.data.set('d1', 'blob');
    const imageWrite = deferred<Buffer>();
    const write = cache.call(IMAGES, 'Create', 'ns', images.CreateImageRequest.encode({ image: { name: 'img' } as images.Image }), () => imageWrite.promise);
    await info(cache, backend, 'd1');
    imageWrite.resolve(Buffer.from(''));
    await write;
    await info(cache, backend, 'd1');
    expect(backend.calls).toBe(1);
  });

  it('a call it does not know counts as a write of everything', async () => {
    const { cache } = await liveCache();
    const backend = backendWith({ c1: 'v1', d1: 'blob' });
    await get(cache, backend, 'c1');
    await info(cache, backend, 'd1');
    await cache.call('boxd.metadata.v1.GC', 'Collect', '', req(''), async () => Buffer.from(''));
    await get(cache, backend, 'c1');
    await info(cache, backend, 'd1');
    expect(backend.calls).toBe(4);
  });

  it('deletes that collect synchronously drop everything; without sync only their own table', async () => {
    const { cache } = await liveCache();
    const backend = backendWith({ c1: 'v1', d1: 'blob' });
    const fill = async () => {
      await get(cache, backend, 'c1');
      await info(cache, backend, 'd1');
    };
    const ok = async () => Buffer.from('');
    await fill();
    await cache.call(LEASES, 'Delete', 'ns', leases.DeleteRequest.encode({ id: 'l', sync: false }), ok);
    await cache.call(IMAGES, 'Delete', 'ns', images.DeleteImageRequest.encode({ name: 'i', sync: false }), ok);
    await fill();
    expect(backend.calls).toBe(2);
    await cache.call(LEASES, 'Delete', 'ns', leases.DeleteRequest.encode({ id: 'l', sync: true }), ok);
    await fill();
    expect(backend.calls).toBe(4);
    await cache.call(IMAGES, 'Delete', 'ns', images.DeleteImageRequest.encode({ name: 'i', sync: true }), ok);
    await fill();
    expect(backend.calls).toBe(6);
    await cache.call(LEASES, 'Delete', 'ns', Buffer.from([0xff, 0xff, 0xff]), ok);
    await fill();
    expect(backend.calls).toBe(8);
  });

  it('stops keeping answers when the notices end or fail, and a newer watch replaces an older', async () => {
    for (const failure of [undefined, new Error('connection reset')]) {
      const { cache, notices } = await liveCache();
      const backend = new Backend();
      backend.data.set('c1', 'v1');
      await get(cache, backend, 'c1');
      notices.end(failure);
      await settle();
      expect(cache.size).toBe(0);
      await get(cache, backend, 'c1');
      await get(cache, backend, 'c1');
      expect(backend.calls).toBe(3);
    }

    const { cache, notices: older } = await liveCache();
    const newer = new Notices();
    void cache.follow(newer);
    newer.push();
    await settle();
    const backend = new Backend();
    backend.data.set('c1', 'v1');
    await get(cache, backend, 'c1');
    older.end();
    older.push(['containers']);
    await settle();
    await get(cache, backend, 'c1');
    expect(backend.calls).toBe(1);
  });

  it('does not keep answers over 64 KiB', async () => {
    const { cache } = await liveCache();
    const backend = new Backend();
    backend.data.set('big', 'x'.repeat(65 * 1024));
    await get(cache, backend, 'big');
    await get(cache, backend, 'big');
    expect(backend.calls).toBe(2);
  });

  it('a write to one row keeps the answers read from other rows of its table', async () => {
    const { cache } = await liveCache();
    const backend = backendWith({ c1: 'v1', c2: 'w1' });
    await get(cache, backend, 'c1');
    await get(cache, backend, 'c2');
    backend.data.set('c1', 'v2');
    await cache.call(CONTAINERS, 'Update', 'ns', containerUpdate('c1'), async () => Buffer.from(''));
    expect(await get(cache, backend, 'c1')).toBe('v2');
    expect(await get(cache, backend, 'c2')).toBe('w1');
    expect(backend.calls).toBe(3);
    // The same id in another namespace is another row.
    await get(cache, backend, 'c2', 'other');
    await cache.call(CONTAINERS, 'Update', 'other', containerUpdate('c2'), async () => Buffer.from(''));
    await get(cache, backend, 'c2');
    expect(backend.calls).toBe(4);
  });

  it('a notice drops the rows it names; a table it names without rows goes whole', async () => {
    const { cache, notices } = await liveCache();
    const backend = new Backend();
    for (const id of ['c1', 'c2', 'c3']) backend.data.set(id, id);
    const fill = async () => {
      for (const id of ['c1', 'c2', 'c3']) await get(cache, backend, id);
    };
    await fill();
    notices.push(['containers'], [{ table: 'containers', key: ['ns', 'c2'] }]);
    await settle();
    await fill();
    expect(backend.calls).toBe(4);
    notices.push(['containers']);
    await settle();
    await fill();
    expect(backend.calls).toBe(7);
  });

  it('an answer in flight when its row is written is not kept; one from another row is', async () => {
    const { cache, notices } = await liveCache();
    const stale = deferred<Buffer>();
    const other = deferred<Buffer>();
    const read = cache.call(CONTAINERS, 'Get', 'ns', containerId('c1'), () => stale.promise);
    const readOther = cache.call(CONTAINERS, 'Get', 'ns', containerId('c2'), () => other.promise);
    notices.push(['containers'], [{ table: 'containers', key: ['ns', 'c1'] }]);
    await settle();
    stale.resolve(Buffer.from('stale'));
    other.resolve(Buffer.from('kept'));
    await Promise.all([read, readOther]);
    const backend = new Backend();
    backend.data.set('c1', 'fresh');
    expect(await get(cache, backend, 'c1')).toBe('fresh');
    expect(await get(cache, backend, 'c2')).toBe('kept');
    expect(backend.calls).toBe(1);
  });

  it('a read whose request does not decode is passed on and never kept', async () => {
    const { cache } = await liveCache();
    let calls = 0;
    const send = async () => (calls++, Buffer.from('answer'));
    await cache.call(CONTAINERS, 'Get', 'ns', Buffer.from([0xff, 0xff, 0xff]), send);
    await cache.call(CONTAINERS, 'Get', 'ns', Buffer.from([0xff, 0xff, 0xff]), send);
    expect(calls).toBe(2);
    expect(cache.size).toBe(0);
  });

  describe('reads back what a write made, once its notice has come', () => {
    const createC1 = containers.CreateContainerRequest.encode({ container: { id: 'c1' } as containers.Container });
    const c1Row = [{ table: 'containers', key: ['ns', 'c1'] }];

    async function withSender() {
      const live = await liveCache();
      const sent: string[] = [];
      live.cache.sendWith(async (service, method, namespace, payload) => {
        sent.push(`${method} ${namespace} ${containers.GetContainerRequest.decode(payload).id}`);
        return Buffer.from('read back');
      });
      return { ...live, sent };
    }

    it('after the notice, the next Get is answered from memory', async () => {
      const { cache, notices, sent } = await withSender();
      await cache.call(CONTAINERS, 'Create', 'ns', createC1, async () => Buffer.from('created'));
      await settle();
      expect(sent).toEqual([]);
      notices.push(['containers'], c1Row);
      await settle();
      expect(sent).toEqual(['Get ns c1']);
      const backend = new Backend();
      expect(await get(cache, backend, 'c1')).toBe('read back');
      expect(backend.calls).toBe(0);
    });

    it('a notice that came before the write answered sends the read when it answers', async () => {
      const { cache, notices, sent } = await withSender();
      const answer = deferred<Buffer>();
      const write = cache.call(CONTAINERS, 'Create', 'ns', createC1, () => answer.promise);
      notices.push(['containers'], c1Row);
      await settle();
      expect(sent).toEqual([]);
      answer.resolve(Buffer.from('created'));
      await write;
      await settle();
      expect(sent).toEqual(['Get ns c1']);
      expect(await get(cache, new Backend(), 'c1')).toBe('read back');
    });

    it('nothing is read back for a failed write, another row, or after the notices stopped', async () => {
      const { cache, notices, sent } = await withSender();
      await cache.call(CONTAINERS, 'Create', 'ns', createC1, async () => Promise.reject(new Error('exists'))).catch(() => undefined);
      notices.push(['containers'], [{ table: 'containers', key: ['ns', 'c2'] }]);
      notices.push(['containers'], c1Row);
      await settle();
      expect(sent).toEqual([]);
      await cache.call(CONTAINERS, 'Create', 'ns', createC1, async () => Buffer.from('created'));
      notices.end();
      await settle();
      expect(sent).toEqual([]);
    });
  });
});
