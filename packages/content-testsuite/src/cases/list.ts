/** List: filters and batching. */
import { expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { drainStream, expectCode, randomBlob, type Blob, type SuiteEnv } from '../helpers.js';

export function listCases(env: SuiteEnv): void {
  const blobs: Blob[] = [randomBlob(100), randomBlob(200), randomBlob(300)];
  let committed: Promise<void> | undefined;
  const ready = () =>
    (committed ??= (async () => {
      for (const [i, blob] of blobs.entries()) {
        await env.commitBlob(blob, { 'boxd.test/list': env.runId, 'boxd.test/index': String(i), ...(i === 0 ? { 'boxd.test/first': 'yes' } : {}) });
      }
    })());
  const run = `labels."boxd.test/list"==${env.runId}`;

  async function digestsOf(filters: string[]): Promise<string[]> {
    return (await env.list(filters)).flat().map((info) => info.digest).sort();
  }
  const sorted = (indexes: number[]) => indexes.map((i) => blobs[i]!.digest).sort();

  it('lists blobs selected by a label', async () => {
    await ready();
    expect(await digestsOf([run])).toEqual(sorted([0, 1, 2]));
    const all = await digestsOf([]);
    for (const blob of blobs) expect(all).toContain(blob.digest);
  });

  it('combines selectors with AND and filters with OR', async () => {
    await ready();
    expect(await digestsOf([`${run},labels."boxd.test/index"==1`])).toEqual(sorted([1]));
    expect(await digestsOf([`${run},labels."boxd.test/index"==0`, `${run},labels."boxd.test/index"==2`])).toEqual(sorted([0, 2]));
    expect(await digestsOf([`${run},labels."boxd.test/index"!=1`])).toEqual(sorted([0, 2]));
    expect(await digestsOf([`${run},labels."boxd.test/index"~=^[12]$`])).toEqual(sorted([1, 2]));
    expect(await digestsOf([`${run},labels."boxd.test/first"`])).toEqual(sorted([0]));
  });

  // Upstream 1.6 does not filter on size (the field never matches), so the suite does not test it.
  it('filters on digest', async () => {
    await ready();
    expect(await digestsOf([`digest==${blobs[1]!.digest}`])).toEqual(sorted([1]));
    expect(await digestsOf([`${run},digest~=^${blobs[2]!.digest.slice(0, 20)}`])).toEqual(sorted([2]));
  });

  it('rejects a malformed filter with INVALID_ARGUMENT', async () => {
    await expectCode(drainStream(env.client.List({ filters: ['labels.a==b,,'] }, env.options)), Code.INVALID_ARGUMENT);
    await expectCode(drainStream(env.client.List({ filters: ['labels."unterminated==b'] }, env.options)), Code.INVALID_ARGUMENT);
  });

  it('streams more than 100 blobs in batches of at most 100', async () => {
    const label = { 'boxd.test/many': env.runId };
    const many = Array.from({ length: 105 }, () => randomBlob(64));
    for (let i = 0; i < many.length; i += 15) await Promise.all(many.slice(i, i + 15).map((blob) => env.commitBlob(blob, label)));
    const batches = await env.list([`labels."boxd.test/many"==${env.runId}`]);
    for (const batch of batches) expect(batch.length).toBeLessThanOrEqual(100);
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches.flat().map((info) => info.digest).sort()).toEqual(many.map((b) => b.digest).sort());
  }, 60_000);
}
