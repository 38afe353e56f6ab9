/** Committed blobs: round trip, delete, digest validation, a large streamed blob. */
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { COMMIT, EMPTY_SHA256, MiB, STAT, WRITE, expectCode, num, randomBlob, sha256, type SuiteEnv } from '../helpers.js';

export function blobCases(env: SuiteEnv, largeBlobSize: number): void {
  it('writes, commits, describes and reads back a blob', async () => {
    const blob = randomBlob(300_000);
    const ref = env.ref('roundtrip');
    const call = env.openWrite();
    const before = Date.now();

    const stat = await env.exchange(call, { action: STAT, ref, total: blob.data.length });
    expect(stat.action).toBe(STAT);
    expect(num(stat.offset)).toBe(0);
    expect(num(stat.total)).toBe(blob.data.length);
    expect(stat.digest).toBe(EMPTY_SHA256);
    expect(stat.startedAt).toBeTruthy();

    const first = await env.exchange(call, { action: WRITE, data: blob.data.subarray(0, 1000) });
    expect(first.action).toBe(WRITE);
    expect(num(first.offset)).toBe(1000);
    expect(first.digest).toBe(sha256(blob.data.subarray(0, 1000)));

    const rest = await env.exchange(call, { action: WRITE, offset: 1000, data: blob.data.subarray(1000) });
    expect(num(rest.offset)).toBe(blob.data.length);
    expect(rest.digest).toBe(blob.digest);

    const labels = { 'boxd.test/run': env.runId, 'containerd.io/gc.root': 'yes' };
    const commit = await env.exchange(call, { action: COMMIT, offset: blob.data.length, total: blob.data.length, expected: blob.digest, labels });
    env.createdDigests.add(blob.digest);
    expect(commit.action).toBe(COMMIT);
    expect(commit.digest).toBe(blob.digest);
    expect(num(commit.offset)).toBe(blob.data.length);
    call.cancel();

    const info = await env.info(blob.digest);
    expect(info.digest).toBe(blob.digest);
    expect(num(info.size)).toBe(blob.data.length);
    expect(info.labels).toEqual(labels);
    const createdMs = num(info.createdAt?.seconds) * 1000;
    expect(createdMs).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 5000);
    expect(createdMs).toBeLessThanOrEqual(Date.now() + 5000);

    const read = await env.read(blob.digest);
    expect(read.data.equals(blob.data)).toBe(true);
    await expectCode(env.status(ref), Code.NOT_FOUND);
  });

  it('ends the stream OK after a commit', async () => {
    const blob = randomBlob(10);
    const committed = await env.writeBlob(blob.data);
    expect(committed.digest).toBe(blob.digest);
  });

  it('deletes a blob, after which it is not found', async () => {
    const blob = randomBlob(4096);
    await env.commitBlob(blob);
    await env.client.Delete({ digest: blob.digest }, env.options);
    await expectCode(env.info(blob.digest), Code.NOT_FOUND);
    await expectCode(env.read(blob.digest), Code.NOT_FOUND);
    await expectCode(env.client.Delete({ digest: blob.digest }, env.options), Code.NOT_FOUND);
  });

  it('reports NOT_FOUND for unknown digests', async () => {
    const unknown = randomBlob(8).digest;
    await expectCode(env.info(unknown), Code.NOT_FOUND);
    await expectCode(env.read(unknown), Code.NOT_FOUND);
    await expectCode(env.client.Delete({ digest: unknown }, env.options), Code.NOT_FOUND);
    await expectCode(env.client.Update({ info: { digest: unknown, labels: { a: 'b' } } }, env.options), Code.NOT_FOUND);
  });

  it('rejects malformed digests with INVALID_ARGUMENT', async () => {
    const malformed = ['sha256:xyz', 'sha256:' + 'A'.repeat(64), 'nodigest', 'sha256:' + 'a'.repeat(63), 'md5:' + 'a'.repeat(32), ''];
    for (const digest of malformed) {
      await expectCode(env.info(digest), Code.INVALID_ARGUMENT);
      await expectCode(env.read(digest), Code.INVALID_ARGUMENT);
      await expectCode(env.client.Delete({ digest }, env.options), Code.INVALID_ARGUMENT);
      await expectCode(env.client.Update({ info: { digest, labels: { a: 'b' } } }, env.options), Code.INVALID_ARGUMENT);
    }
  });

  it(`streams a large blob (${largeBlobSize >> 20} MiB) in and out`, async () => {
    // Generated chunk by chunk and hashed as it goes, so the test never holds the whole blob.
    const ref = env.ref('large');
    const chunk = randomBlob(MiB).data;
    const hash = createHash('sha256');
    const call = env.openWrite();
    await env.exchange(call, { action: STAT, ref, total: largeBlobSize });
    for (let offset = 0; offset < largeBlobSize; offset += chunk.length) {
      // A fresh buffer per message: the transport may still hold the previous one.
      const piece = Buffer.from(chunk.subarray(0, Math.min(chunk.length, largeBlobSize - offset)));
      piece.writeUInt32BE(offset / chunk.length, 0);
      hash.update(piece);
      await call.send({ action: WRITE, offset, data: piece });
    }
    const digest = `sha256:${hash.digest('hex')}`;
    for (let offset = 0; offset < largeBlobSize; offset += chunk.length) {
      expect(num((await call.recv())?.offset)).toBe(Math.min(offset + chunk.length, largeBlobSize));
    }
    const commit = await env.exchange(call, { action: COMMIT, offset: largeBlobSize, total: largeBlobSize, expected: digest });
    env.createdDigests.add(digest);
    expect(commit.digest).toBe(digest);
    call.cancel();

    expect(num((await env.info(digest)).size)).toBe(largeBlobSize);
    const readHash = createHash('sha256');
    let bytes = 0;
    for await (const response of env.client.Read({ digest }, env.options)) {
      expect(response.data.length).toBeLessThanOrEqual(MiB);
      readHash.update(response.data);
      bytes += response.data.length;
    }
    expect(bytes).toBe(largeBlobSize);
    expect(`sha256:${readHash.digest('hex')}`).toBe(digest);
  }, 120_000);
}
