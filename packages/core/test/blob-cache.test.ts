import { describe, expect, it } from 'vitest';
import Long from 'long';
import { BlobCache } from '../src/services/blob-cache.js';

/** A store holding one blob, answering reads the way the content store does, and counting them. */
function store(blob: Uint8Array) {
  const calls: Array<{ offset: number; size: number }> = [];
  return {
    calls,
    async *read(req: { offset?: Long | number | null; size?: Long | number | null }) {
      const offset = Number(req.offset ?? 0);
      const size = Number(req.size ?? 0);
      calls.push({ offset, size });
      if (offset > blob.length) throw new Error(`offset ${offset} past the end`);
      const end = size ? Math.min(blob.length, offset + size) : blob.length;
      for (let at = offset; at < end; at += 3) yield { offset: Long.fromNumber(at), data: blob.subarray(at, Math.min(end, at + 3)) };
    },
  };
}

async function read(cache: BlobCache, s: ReturnType<typeof store>, digest: string, size: number, offset = 0, want = 0): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const r of cache.read({ digest, offset: Long.fromNumber(offset), size: Long.fromNumber(want) }, size, (req) => s.read(req))) parts.push(r.data!);
  return Buffer.concat(parts).toString();
}

describe('blob cache', () => {
  const blob = Buffer.from('{"schemaVersion":2}');

  it('reads a small blob whole once, then answers whole and ranged reads from memory', async () => {
    const cache = new BlobCache();
    const s = store(blob);
    expect(await read(cache, s, 'sha256:a', blob.length)).toBe('{"schemaVersion":2}');
    expect(await read(cache, s, 'sha256:a', blob.length, 2, 13)).toBe('schemaVersion');
    expect(await read(cache, s, 'sha256:a', blob.length, 17)).toBe('2}');
    expect(s.calls).toEqual([{ offset: 0, size: 0 }]);
  });

  it('sends reads it cannot answer exactly to the store', async () => {
    const cache = new BlobCache();
    const s = store(blob);
    await read(cache, s, 'sha256:a', blob.length);
    await expect(read(cache, s, 'sha256:a', blob.length, 40)).rejects.toThrow(/past the end/);
    expect(await read(cache, s, 'sha256:a', blob.length, 17, 10)).toBe('2}');
    expect(s.calls).toHaveLength(3);
  });

  it('does not keep a blob whose bytes disagree with the indexed size', async () => {
    const cache = new BlobCache();
    const s = store(blob);
    expect(await read(cache, s, 'sha256:a', blob.length + 1)).toBe('{"schemaVersion":2}');
    expect(cache.get('sha256:a')).toBeUndefined();
    expect(s.calls).toHaveLength(2);
  });

  it('leaves blobs larger than its limit to the store', async () => {
    const cache = new BlobCache(8, 64);
    const s = store(blob);
    expect(await read(cache, s, 'sha256:a', blob.length, 2, 6)).toBe('schema');
    expect(cache.get('sha256:a')).toBeUndefined();
    expect(s.calls).toEqual([{ offset: 2, size: 6 }]);
  });

  it('evicts the least recently used blobs beyond its byte budget', () => {
    const cache = new BlobCache(10, 20);
    cache.set('a', Buffer.alloc(8));
    cache.set('b', Buffer.alloc(8));
    cache.get('a');
    cache.set('c', Buffer.alloc(8));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
  });
});
