/** Ingests: the Write protocol, resuming, locking and aborting. */
import { expect, it } from 'vitest';
import { Code } from '@boxd/api';
import {
  COMMIT,
  EMPTY_SHA256,
  STAT,
  WRITE,
  drainCommitResponses,
  expectCode,
  num,
  randomBlob,
  retryUnavailable,
  sha256,
  type SuiteEnv,
} from '../helpers.js';

export function ingestCases(env: SuiteEnv): void {
  it('requires a ref on the first message (INVALID_ARGUMENT)', async () => {
    const call = env.openWrite();
    await expectCode(env.exchange(call, { action: STAT, total: 10 }), Code.INVALID_ARGUMENT, 'first message must have a reference');
  });

  it('resumes an ingest after the stream was dropped', async () => {
    const blob = randomBlob(200_000);
    const half = 120_000;
    const ref = env.ref('resume');
    const doomed = await env.connect();
    const first = env.openWrite(doomed);
    await env.exchange(first, { action: STAT, ref, total: blob.data.length });
    const written = await env.exchange(first, { action: WRITE, offset: 0, data: blob.data.subarray(0, half) });
    expect(num(written.offset)).toBe(half);
    await env.drop(doomed, first);

    const status = await retryUnavailable(() => env.status(ref));
    expect(status.ref).toBe(ref);
    expect(num(status.offset)).toBe(half);
    expect(num(status.total)).toBe(blob.data.length);

    // A call that failed is over: each attempt opens its own, as a client resuming would.
    const { second, resumed } = await retryUnavailable(async () => {
      const call = env.openWrite();
      return { second: call, resumed: await env.exchange(call, { action: STAT, ref, total: blob.data.length }) };
    });
    expect(num(resumed.offset)).toBe(half);
    expect(resumed.digest).toBe(sha256(blob.data.subarray(0, half)));
    await env.exchange(second, { action: WRITE, offset: half, data: blob.data.subarray(half) });
    const commit = await env.exchange(second, { action: COMMIT, offset: blob.data.length, total: blob.data.length, expected: blob.digest });
    env.createdDigests.add(blob.digest);
    expect(commit.digest).toBe(blob.digest);
    second.cancel();
    expect((await env.read(blob.digest)).data.equals(blob.data)).toBe(true);
  });

  it('keeps an ingest after a half-close without commit, until Abort', async () => {
    const ref = env.ref('halfclose');
    const data = randomBlob(5000).data;
    const call = env.openWrite();
    await env.exchange(call, { action: STAT, ref, total: 9000 });
    await env.exchange(call, { action: WRITE, offset: 0, data });
    await call.end();
    // The stream ends OK; a server may repeat its last response first.
    for (let response = await call.recv(); response; response = await call.recv()) expect(num(response.offset)).toBe(data.length);

    const status = await retryUnavailable(() => env.status(ref));
    expect(num(status.offset)).toBe(data.length);
    expect(num(status.total)).toBe(9000);
    const { statuses } = await env.client.ListStatuses({ filters: [`ref==${ref}`] }, env.options);
    expect(statuses.map((s) => s.ref)).toEqual([ref]);

    await env.client.Abort({ ref }, env.options);
    await expectCode(env.status(ref), Code.NOT_FOUND);
    await expectCode(env.client.Abort({ ref }, env.options), Code.NOT_FOUND);
    expect((await env.client.ListStatuses({ filters: [`ref==${ref}`] }, env.options)).statuses).toEqual([]);
  });

  it('locks a ref to one writer at a time (UNAVAILABLE)', async () => {
    const ref = env.ref('locked');
    const holder = env.openWrite();
    await env.exchange(holder, { action: STAT, ref });
    await env.exchange(holder, { action: WRITE, offset: 0, data: Buffer.from('held') });

    const contender = env.openWrite();
    await expectCode(env.exchange(contender, { action: STAT, ref }), Code.UNAVAILABLE, /locked/);

    await holder.end();
    while (await holder.recv()) {
      // the stream ends once the server has released the ref
    }
    const next = env.openWrite();
    const resumed = await retryUnavailable(() => env.exchange(next, { action: STAT, ref }));
    expect(num(resumed.offset)).toBe(4);
    next.cancel();
  });

  it('rejects a write that is not at the current offset (OUT_OF_RANGE)', async () => {
    const ref = env.ref('offset');
    const call = env.openWrite();
    await env.exchange(call, { action: STAT, ref });
    await env.exchange(call, { action: WRITE, offset: 0, data: Buffer.from('0123456789') });
    await expectCode(env.exchange(call, { action: WRITE, offset: 5, data: Buffer.from('x') }), Code.OUT_OF_RANGE, 'write @5 must occur at current offset 10');
  });

  it('starts over when a write comes at offset 0 on a non-empty ingest', async () => {
    const ref = env.ref('truncate');
    const final = randomBlob(700);
    const call = env.openWrite();
    await env.exchange(call, { action: STAT, ref });
    await env.exchange(call, { action: WRITE, offset: 0, data: randomBlob(1500).data });
    const restarted = await env.exchange(call, { action: WRITE, offset: 0, data: final.data });
    expect(num(restarted.offset)).toBe(final.data.length);
    expect(restarted.digest).toBe(final.digest);
    const commit = await env.exchange(call, { action: COMMIT, offset: final.data.length, expected: final.digest });
    env.createdDigests.add(final.digest);
    expect(commit.digest).toBe(final.digest);
    expect(num((await env.info(final.digest)).size)).toBe(final.data.length);
  });

  it('answers STAT with the digest of the data so far', async () => {
    const ref = env.ref('stat');
    const data = randomBlob(333).data;
    const call = env.openWrite();
    const fresh = await env.exchange(call, { ref });
    expect(fresh.digest).toBe(EMPTY_SHA256);
    await env.exchange(call, { action: WRITE, offset: 0, data });
    const stat = await env.exchange(call, { action: STAT });
    expect(stat.action).toBe(STAT);
    expect(num(stat.offset)).toBe(data.length);
    expect(stat.digest).toBe(sha256(data));
    call.cancel();
  });

  it('sends data with the commit message itself', async () => {
    const blob = randomBlob(2048);
    const call = env.openWrite();
    await env.exchange(call, { action: STAT, ref: env.ref('commitdata'), total: blob.data.length });
    const commit = await env.exchange(call, { action: COMMIT, offset: 0, data: blob.data, total: blob.data.length, expected: blob.digest });
    env.createdDigests.add(blob.digest);
    expect(commit.digest).toBe(blob.digest);
    expect(num(commit.offset)).toBe(blob.data.length);
    await drainCommitResponses(call);
  });
}
