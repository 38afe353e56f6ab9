/** Status and ListStatuses of ingests in progress. */
import { expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { STAT, WRITE, expectCode, num, randomBlob, retryUnavailable, type SuiteEnv } from '../helpers.js';

export function statusCases(env: SuiteEnv): void {
  async function leaveIngest(ref: string, size: number, total: number): Promise<void> {
    const call = env.openWrite();
    await env.exchange(call, { action: STAT, ref, total });
    await env.exchange(call, { action: WRITE, offset: 0, data: randomBlob(size).data });
    await call.end();
    while (await call.recv()) {
      // wait for the stream to end so the ref is unlocked
    }
  }

  it('reports an ingest in progress', async () => {
    const ref = env.ref('status');
    const before = Date.now();
    await leaveIngest(ref, 1234, 5000);
    const status = await retryUnavailable(() => env.status(ref));
    expect(status.ref).toBe(ref);
    expect(num(status.offset)).toBe(1234);
    expect(num(status.total)).toBe(5000);
    const startedMs = num(status.startedAt?.seconds) * 1000;
    expect(startedMs).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 5000);
    expect(startedMs).toBeLessThanOrEqual(Date.now() + 5000);
    await expectCode(env.status(env.ref('nosuchingest')), Code.NOT_FOUND);
  });

  it('filters statuses by ref', async () => {
    const a = env.ref('lst-a');
    const b = env.ref('lst-b');
    await leaveIngest(a, 10, 0);
    await leaveIngest(b, 20, 0);
    const refsOf = async (filters: string[]) =>
      (await env.client.ListStatuses({ filters }, env.options)).statuses.map((s) => s.ref).sort();
    expect(await refsOf([`ref==${a}`])).toEqual([a]);
    const prefix = a.slice(0, -1);
    expect(await refsOf([`ref~=^${prefix}`])).toEqual([a, b]);
    expect(await refsOf([`ref==${a}`, `ref==${b}`])).toEqual([a, b]);
    expect(await refsOf([`ref==${a}-nothing`])).toEqual([]);
    const all = await refsOf([]);
    expect(all).toContain(a);
    expect(all).toContain(b);
    const offsets = (await env.client.ListStatuses({ filters: [`ref==${b}`] }, env.options)).statuses.map((s) => num(s.offset));
    expect(offsets).toEqual([20]);
    await expectCode(env.client.ListStatuses({ filters: ['ref=='] }, env.options), Code.INVALID_ARGUMENT);
  });
}
