import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Long from 'long';
import { Code, GO_ZERO_SECONDS } from '@boxd/api';
import { expectCode, inNs, sha, startMetadata, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startMetadata();
});
afterAll(() => h.stop());

const opts = inNs('img');
const goZero = { seconds: GO_ZERO_SECONDS, nanos: 0 };
const target = (hex: string, size: number | string = 10) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(hex), size, annotations: {} });

describe('Images', () => {
  it('creates with server timestamps and gets it back exactly', async () => {
    const before = Date.now();
    const { image } = await h.clients.images.Create(
      { image: { name: 'docker.io/library/a:1', labels: { l: 'v' }, target: target('a', '9007199254740993'), createdAt: goZero, updatedAt: goZero } },
      opts,
    );
    const created = Long.fromValue(image!.createdAt!.seconds).toNumber() * 1000;
    expect(created).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    const got = (await h.clients.images.Get({ name: 'docker.io/library/a:1' }, opts)).image!;
    expect(got.target?.size.toString()).toBe('9007199254740993');
    expect(got.labels).toEqual({ l: 'v' });
    expect(got.createdAt).toEqual(image!.createdAt);
  });

  it('rejects duplicates, missing images and invalid targets', async () => {
    await h.clients.images.Create({ image: { name: 'dup', target: target('b') } }, opts);
    await expectCode(h.clients.images.Create({ image: { name: 'dup', target: target('b') } }, opts), Code.ALREADY_EXISTS, 'image "dup"');
    await expectCode(h.clients.images.Get({ name: 'missing' }, opts), Code.NOT_FOUND, 'image "missing"');
    await expectCode(h.clients.images.Delete({ name: 'missing' }, opts), Code.NOT_FOUND, 'image "missing"');
    await expectCode(h.clients.images.Update({ image: { name: 'missing', target: target('b') } }, opts), Code.NOT_FOUND);
    await expectCode(h.clients.images.Create({ image: { name: '', target: target('b') } }, opts), Code.INVALID_ARGUMENT, 'Image.Name required');
    await expectCode(h.clients.images.Create({ image: { name: 'x', target: { ...target('b'), digest: 'sha256:zz' } } }, opts), Code.INVALID_ARGUMENT, /Target.Digest/);
    await expectCode(h.clients.images.Create({ image: { name: 'x', target: { ...target('b'), size: 0 } } }, opts), Code.INVALID_ARGUMENT, /Target.Size/);
    await expectCode(h.clients.images.Create({ image: { name: 'x', target: { ...target('b'), mediaType: '' } } }, opts), Code.INVALID_ARGUMENT, /MediaType/);
    await expectCode(h.clients.images.Create({ image: { name: 'x', labels: { k: 'v'.repeat(4096) }, target: target('b') } }, opts), Code.INVALID_ARGUMENT);
    await expectCode(h.clients.images.Update({ image: { name: '' } }, opts), Code.INVALID_ARGUMENT, 'Image.Name required');
  });

  it('updates by mask: labels, one label, target, annotations; empty mask = labels + target', async () => {
    const name = 'upd';
    await h.clients.images.Create({ image: { name, labels: { a: '1', b: '2' }, target: { ...target('c'), annotations: { x: '1', y: '2' } } } }, opts);
    const upd = (image: object, paths?: string[]) =>
      h.clients.images.Update({ image: { name, ...image }, updateMask: paths ? { paths } : null }, opts).then((r) => r.image!);

    let img = await upd({ labels: { a: '9', c: '3' } }, ['labels.a', 'labels.b']);
    expect(img.labels).toEqual({ a: '9' });
    img = await upd({ target: { annotations: { y: 'new' } } }, ['annotations.y', 'annotations.x']);
    expect(img.target?.annotations).toEqual({ y: 'new' });
    expect(img.target?.digest).toBe(sha('c'));
    img = await upd({ target: target('d', 77) }, ['target']);
    expect(img.target?.digest).toBe(sha('d'));
    expect(img.labels).toEqual({ a: '9' });
    img = await upd({ labels: { only: 'me' }, target: target('e') });
    expect(img.labels).toEqual({ only: 'me' });
    expect(img.target?.digest).toBe(sha('e'));
    await expectCode(upd({ target: target('e') }, ['name']), Code.INVALID_ARGUMENT, /cannot update "name" field on image "upd"/);
    await expectCode(upd({ target: { ...target('e'), size: 0 } }, ['target']), Code.INVALID_ARGUMENT, /Target.Size/);
  });

  it('lists with filters', async () => {
    const ns = inNs('img-list');
    await h.clients.images.Create({ image: { name: 'r/one:1', labels: { 'containerd.io/x': 'y' }, target: target('1') } }, ns);
    await h.clients.images.Create({ image: { name: 'r/two:1', target: { ...target('2'), mediaType: 'index', annotations: { k: 'v' } } } }, ns);
    const names = async (filters: string[]) => (await h.clients.images.List({ filters }, ns)).images.map((i) => i.name).sort();
    expect(await names([])).toEqual(['r/one:1', 'r/two:1']);
    expect(await names(['name==r/one:1'])).toEqual(['r/one:1']);
    expect(await names(['name~=two'])).toEqual(['r/two:1']);
    expect(await names([`target.digest==${sha('2')}`])).toEqual(['r/two:1']);
    expect(await names(['target.mediatype==index'])).toEqual(['r/two:1']);
    expect(await names(['labels."containerd.io/x"==y'])).toEqual(['r/one:1']);
    expect(await names(['annotations.k'])).toEqual(['r/two:1']);
    expect(await names(['name==r/one:1', 'annotations.k==v'])).toEqual(['r/one:1', 'r/two:1']);
    await expectCode(h.clients.images.List({ filters: ['name=='] }, ns), Code.INVALID_ARGUMENT);
    // Namespaces are separate.
    expect((await h.clients.images.List({ filters: [] }, inNs('img-other'))).images).toEqual([]);
  });

  it('deletes, and with sync=true collects garbage before answering', async () => {
    const ns = inNs('img-del');
    await h.clients.content.Add({ digest: sha('f1'), size: 5 }, ns);
    await h.clients.images.Create({ image: { name: 'keep', target: target('f1') } }, ns);
    await h.clients.gc.Collect({});
    expect((await h.clients.content.Info({ digest: sha('f1') }, ns)).info?.digest).toBe(sha('f1'));
    await h.clients.images.Delete({ name: 'keep', sync: true }, ns);
    await expectCode(h.clients.content.Info({ digest: sha('f1') }, ns), Code.NOT_FOUND);
    await expectCode(h.clients.images.Get({ name: 'keep' }, ns), Code.NOT_FOUND);
  });

  it('an unfiltered List (served from pre-encoded images) matches Get after creates, updates and deletes', async () => {
    const o = inNs('img-encoded');
    for (const [n, hex] of [['l1', 'a1'], ['l2', 'a2'], ['l3', 'a3']]) await h.clients.images.Create({ image: { name: n, labels: { n }, target: target(hex, '9007199254740993') } }, o);
    await h.clients.images.Update({ image: { name: 'l2', labels: { changed: 'yes' }, target: target('b2', 7) } }, o);
    await h.clients.images.Delete({ name: 'l3' }, o);
    const listed = (await h.clients.images.List({ filters: [] }, o)).images;
    const got = await Promise.all(['l1', 'l2'].map(async (name) => (await h.clients.images.Get({ name }, o)).image));
    expect(listed.map((i) => i.name)).toEqual(['l1', 'l2']);
    expect(listed).toEqual(got);
    expect(listed[1]!.labels).toEqual({ changed: 'yes' });
    expect(listed[0]!.target!.size.toString()).toBe('9007199254740993');
  });
});
