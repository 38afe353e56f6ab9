/** Update: label field masks and their errors. */
import { expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { expectCode, num, randomBlob, type SuiteEnv } from '../helpers.js';

export function labelCases(env: SuiteEnv): void {
  async function blobWith(labels: Record<string, string>): Promise<string> {
    const blob = randomBlob(512);
    await env.commitBlob(blob, labels);
    return blob.digest;
  }

  async function update(digest: string, labels: Record<string, string>, paths?: string[]) {
    const { info } = await env.client.Update({ info: { digest, labels }, updateMask: paths ? { paths } : undefined }, env.options);
    expect(info?.digest).toBe(digest);
    expect((await env.info(digest)).labels, 'Info agrees with the Update response').toEqual(info?.labels ?? {});
    return info!;
  }

  it('sets and deletes single labels with labels.<key> paths', async () => {
    const digest = await blobWith({ a: '1', b: '2', 'containerd.io/uncompressed': 'x' });
    const info = await update(digest, { a: '10', c: '3', 'containerd.io/uncompressed': 'sha256:y' }, ['labels.a', 'labels.c', 'labels.containerd.io/uncompressed']);
    expect(info.labels).toEqual({ a: '10', b: '2', c: '3', 'containerd.io/uncompressed': 'sha256:y' });
    const removed = await update(digest, {}, ['labels.b', 'labels.missing']);
    expect(removed.labels).toEqual({ a: '10', c: '3', 'containerd.io/uncompressed': 'sha256:y' });
  });

  it('replaces all labels with the labels path or an empty mask', async () => {
    const digest = await blobWith({ a: '1', b: '2' });
    expect((await update(digest, { z: '26' }, ['labels'])).labels).toEqual({ z: '26' });
    expect((await update(digest, { y: '25', x: '24' })).labels).toEqual({ y: '25', x: '24' });
    expect((await update(digest, {}, [])).labels ?? {}).toEqual({});
  });

  it('keeps size and creation time, and moves the update time forward', async () => {
    const digest = await blobWith({});
    const before = await env.info(digest);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const after = await update(digest, { k: 'v' }, ['labels.k']);
    expect(num(after.size)).toBe(512);
    expect(num(after.createdAt?.seconds)).toBe(num(before.createdAt?.seconds));
    expect(after.createdAt?.nanos).toBe(before.createdAt?.nanos);
    const ns = (t: typeof after.updatedAt) => BigInt(num(t?.seconds)) * 1_000_000_000n + BigInt(t?.nanos ?? 0);
    expect(ns(after.updatedAt) > ns(before.createdAt)).toBe(true);
  });

  it('does not store labels with empty values', async () => {
    const digest = await blobWith({ a: '1', empty: '' });
    expect((await env.info(digest)).labels).toEqual({ a: '1' });
    expect((await update(digest, { b: '2', none: '' }, ['labels'])).labels).toEqual({ b: '2' });
    expect((await update(digest, { c: '' }, ['labels.c', 'labels.b'])).labels ?? {}).toEqual({});
  });

  it('rejects other fields in the mask with INVALID_ARGUMENT', async () => {
    const digest = await blobWith({ a: '1' });
    for (const path of ['size', 'digest', 'created_at', 'label']) {
      await expectCode(
        env.client.Update({ info: { digest, labels: {} }, updateMask: { paths: [path] } }, env.options),
        Code.INVALID_ARGUMENT,
        `cannot update "${path}" field on content info`,
      );
    }
    expect((await env.info(digest)).labels).toEqual({ a: '1' });
  });

  it('rejects a label larger than 4096 bytes with INVALID_ARGUMENT', async () => {
    const digest = await blobWith({ a: '1' });
    await expectCode(
      env.client.Update({ info: { digest, labels: { big: 'x'.repeat(4096) } }, updateMask: { paths: ['labels.big'] } }, env.options),
      Code.INVALID_ARGUMENT,
    );
    expect((await env.info(digest)).labels).toEqual({ a: '1' });
  });
}
