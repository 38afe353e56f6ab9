/** Read: ranges, chunking, reported offsets, OUT_OF_RANGE. */
import { expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { MiB, expectCode, randomBlob, type SuiteEnv } from '../helpers.js';

/**
 * How a server numbers the chunks of a ranged Read. The proto calls the field
 * the offset of the returned data, i.e. absolute; containerd 1.6 counts from
 * the start of the requested range instead (relative). Clients ignore it.
 */
export type ReadOffsets = 'absolute' | 'relative' | 'either';

export function readCases(env: SuiteEnv, offsets: ReadOffsets): void {
  const blob = randomBlob(2 * MiB + 12345);
  let committed: Promise<void> | undefined;
  const ready = () => (committed ??= env.commitBlob(blob));

  async function expectRange(offset: number, size: number, start: number, end: number): Promise<void> {
    const read = await env.read(blob.digest, offset, size);
    expect(read.data.equals(blob.data.subarray(start, end)), `bytes of Read(offset ${offset}, size ${size})`).toBe(true);
    for (const chunk of read.sizes) expect(chunk).toBeLessThanOrEqual(MiB);
    if (read.offsets.length === 0) return;
    const first = read.offsets[0]!;
    if (offsets === 'absolute') expect(first).toBe(start);
    else if (offsets === 'relative') expect(first).toBe(0);
    else expect([start, 0]).toContain(first);
    let expected = first;
    read.offsets.forEach((reported, i) => {
      expect(reported, `offset of chunk ${i}`).toBe(expected);
      expected += read.sizes[i]!;
    });
  }

  it('reads the whole blob in chunks of at most 1 MiB', async () => {
    await ready();
    const read = await env.read(blob.digest);
    expect(read.data.equals(blob.data)).toBe(true);
    expect(read.sizes.length).toBeGreaterThanOrEqual(3);
    await expectRange(0, 0, 0, blob.data.length);
  });

  it('reads from an offset to the end', async () => {
    await ready();
    await expectRange(1_500_000, 0, 1_500_000, blob.data.length);
  });

  it('reads a range inside the blob', async () => {
    await ready();
    await expectRange(100, 5000, 100, 5100);
    await expectRange(MiB - 10, MiB + 20, MiB - 10, 2 * MiB + 10);
  });

  it('clamps a size past the end to the end', async () => {
    await ready();
    await expectRange(blob.data.length - 10, 1000, blob.data.length - 10, blob.data.length);
  });

  it('treats a negative offset as the start', async () => {
    await ready();
    await expectRange(-5, 10, 0, 10);
  });

  it('returns no data at offset == size', async () => {
    await ready();
    const read = await env.read(blob.digest, blob.data.length, 0);
    expect(read.data.length).toBe(0);
  });

  it('rejects an offset past the end with OUT_OF_RANGE', async () => {
    await ready();
    await expectCode(env.read(blob.digest, blob.data.length + 1, 0), Code.OUT_OF_RANGE);
  });
}
