/** Commit checks: size and digest verification, existing content. */
import { expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { COMMIT, STAT, WRITE, expectCode, num, randomBlob, retryUnavailable, type SuiteEnv } from '../helpers.js';

export function commitCases(env: SuiteEnv): void {
  async function writeUncommitted(ref: string, data: Buffer, total = data.length) {
    const call = env.openWrite();
    await env.exchange(call, { action: STAT, ref, total });
    await env.exchange(call, { action: WRITE, offset: 0, data });
    return call;
  }

  it('refuses a commit whose digest does not match (FAILED_PRECONDITION) and keeps the ingest', async () => {
    const blob = randomBlob(4000);
    const wrong = randomBlob(4000).digest;
    const ref = env.ref('wrongdigest');
    const call = await writeUncommitted(ref, blob.data);
    await expectCode(env.exchange(call, { action: COMMIT, offset: blob.data.length, total: blob.data.length, expected: wrong }), Code.FAILED_PRECONDITION);
    await expectCode(env.info(wrong), Code.NOT_FOUND);
    await expectCode(env.info(blob.digest), Code.NOT_FOUND);
    // The bytes stay in the ingest, so the client can still commit them correctly.
    const status = await retryUnavailable(() => env.status(ref));
    expect(num(status.offset)).toBe(blob.data.length);
    const retry = env.openWrite();
    const resumed = await retryUnavailable(() => env.exchange(retry, { action: STAT, ref }));
    expect(resumed.digest).toBe(blob.digest);
    const commit = await env.exchange(retry, { action: COMMIT, offset: blob.data.length, total: blob.data.length, expected: blob.digest });
    env.createdDigests.add(blob.digest);
    expect(commit.digest).toBe(blob.digest);
  });

  it('refuses a commit whose size does not match (FAILED_PRECONDITION)', async () => {
    const blob = randomBlob(3000);
    const ref = env.ref('wrongsize');
    const call = await writeUncommitted(ref, blob.data);
    await expectCode(env.exchange(call, { action: COMMIT, offset: blob.data.length, total: blob.data.length + 1, expected: blob.digest }), Code.FAILED_PRECONDITION);
    await expectCode(env.info(blob.digest), Code.NOT_FOUND);
    expect(num((await retryUnavailable(() => env.status(ref))).offset)).toBe(blob.data.length);
  });

  it('refuses a commit short of the total announced at open (FAILED_PRECONDITION)', async () => {
    const blob = randomBlob(3000);
    const call = await writeUncommitted(env.ref('short'), blob.data, blob.data.length * 2);
    await expectCode(env.exchange(call, { action: COMMIT, offset: blob.data.length, expected: blob.digest }), Code.FAILED_PRECONDITION);
    await expectCode(env.info(blob.digest), Code.NOT_FOUND);
  });

  it('reports ALREADY_EXISTS when committing content that exists, and drops the ingest', async () => {
    const blob = randomBlob(2500);
    await env.commitBlob(blob, { keep: 'me' });
    const ref = env.ref('again');
    const call = await writeUncommitted(ref, blob.data);
    await expectCode(env.exchange(call, { action: COMMIT, offset: blob.data.length, total: blob.data.length }), Code.ALREADY_EXISTS, blob.digest);
    await expectCode(retryUnavailable(() => env.status(ref)), Code.NOT_FOUND);
    // The existing blob is untouched.
    expect((await env.info(blob.digest)).labels).toEqual({ keep: 'me' });
    expect((await env.read(blob.digest)).data.equals(blob.data)).toBe(true);
  });

  it('reports ALREADY_EXISTS before any response when the expected digest exists', async () => {
    const blob = randomBlob(1200);
    await env.commitBlob(blob);
    const ref = env.ref('expected');
    const call = env.openWrite();
    await call.send({ action: STAT, ref, total: blob.data.length, expected: blob.digest });
    await expectCode(call.recv(), Code.ALREADY_EXISTS, blob.digest);
    await expectCode(retryUnavailable(() => env.status(ref)), Code.NOT_FOUND);
  });

  it('reports ALREADY_EXISTS when a later message names an existing expected digest', async () => {
    const blob = randomBlob(1300);
    await env.commitBlob(blob);
    const ref = env.ref('expectedlater');
    const call = env.openWrite();
    await env.exchange(call, { action: STAT, ref, total: blob.data.length });
    await expectCode(env.exchange(call, { action: WRITE, offset: 0, data: blob.data, expected: blob.digest }), Code.ALREADY_EXISTS);
    await expectCode(retryUnavailable(() => env.status(ref)), Code.NOT_FOUND);
  });

  it('applies labels given with the commit', async () => {
    const blob = randomBlob(999);
    const labels = { 'containerd.io/gc.ref.content.l.0': randomBlob(1).digest, 'boxd.test/x': 'y' };
    await env.commitBlob(blob, labels);
    expect((await env.info(blob.digest)).labels).toEqual(labels);
  });
}
