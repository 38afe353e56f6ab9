import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { expectCode, inNs, sha, startMetadata, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startMetadata();
});
afterAll(() => h.stop());

describe('Namespaces', () => {
  it('creates, gets, lists, updates and deletes', async () => {
    const ns = h.clients.namespaces;
    const created = await ns.Create({ namespace: { name: 'ns-a', labels: { a: '1', b: '2' } } });
    expect(created.namespace).toEqual({ name: 'ns-a', labels: { a: '1', b: '2' } });
    expect((await ns.Get({ name: 'ns-a' })).namespace?.labels).toEqual({ a: '1', b: '2' });
    expect((await ns.List({ filter: '' })).namespaces.map((n) => n.name)).toContain('ns-a');

    await ns.Update({ namespace: { name: 'ns-a', labels: { a: 'x', c: '3' } }, updateMask: { paths: ['labels.a', 'labels.b'] } });
    expect((await ns.Get({ name: 'ns-a' })).namespace?.labels).toEqual({ a: 'x' });
    await ns.Update({ namespace: { name: 'ns-a', labels: { z: '9' } } });
    expect((await ns.Get({ name: 'ns-a' })).namespace?.labels).toEqual({ z: '9' });

    await ns.Delete({ name: 'ns-a' });
    expect((await ns.List({ filter: '' })).namespaces.map((n) => n.name)).not.toContain('ns-a');
  });

  it('answers Get of an unknown namespace with empty labels, as upstream', async () => {
    expect((await h.clients.namespaces.Get({ name: 'never-made' })).namespace).toEqual({ name: 'never-made', labels: {} });
  });

  it('rejects bad names, duplicates, bad labels and unknown mask paths', async () => {
    const ns = h.clients.namespaces;
    await expectCode(ns.Create({ namespace: { name: 'Bad Name!' } }), Code.INVALID_ARGUMENT, /identifier "Bad Name!" must match/);
    await expectCode(ns.Create({ namespace: { name: '' } }), Code.INVALID_ARGUMENT, /must not be empty/);
    await ns.Create({ namespace: { name: 'dup' } });
    await expectCode(ns.Create({ namespace: { name: 'dup' } }), Code.ALREADY_EXISTS, 'namespace "dup"');
    await expectCode(ns.Create({ namespace: { name: 'big', labels: { k: 'v'.repeat(5000) } } }), Code.INVALID_ARGUMENT, /maximum size/);
    await expectCode(ns.Update({ namespace: { name: 'dup' }, updateMask: { paths: ['name'] } }), Code.INVALID_ARGUMENT, /cannot update "name" field/);
    await expectCode(ns.Delete({ name: 'nope' }), Code.NOT_FOUND, 'namespace "nope"');
  });

  it('is created implicitly by a write in a new namespace', async () => {
    await h.clients.leases.Create({ id: 'l1' }, inNs('implicit'));
    expect((await h.clients.namespaces.List({ filter: '' })).namespaces.map((n) => n.name)).toContain('implicit');
    // Leases do not keep a namespace from being deleted, and go with it.
    await h.clients.namespaces.Delete({ name: 'implicit' });
    expect((await h.clients.leases.List({ filters: [] }, inNs('implicit'))).leases).toEqual([]);
  });

  it('refuses to delete a namespace that still holds objects, naming them', async () => {
    const opts = inNs('busy');
    await h.clients.images.Create({ image: { name: 'img', target: { mediaType: 'm', digest: sha('1'), size: 1 } } }, opts);
    await h.clients.content.Add({ digest: sha('2'), size: 2 }, opts);
    await h.clients.containers.Create({ container: { id: 'c1', runtime: { name: 'rt' }, spec: { type_url: 'spec', value: new Uint8Array() } } }, opts);
    await h.clients.snapshots.Prepare({ snapshotter: 'native', key: 'k' }, opts);
    await expectCode(
      h.clients.namespaces.Delete({ name: 'busy' }),
      Code.FAILED_PRECONDITION,
      'namespace "busy" must be empty, but it still has images, blobs, containers, snapshots on "native" snapshotter',
    );
    await h.clients.images.Delete({ name: 'img' }, opts);
    await h.clients.content.Delete({ digest: sha('2') }, opts);
    await h.clients.containers.Delete({ id: 'c1' }, opts);
    await h.clients.snapshots.Remove({ snapshotter: 'native', key: 'k' }, opts);
    await h.clients.namespaces.Delete({ name: 'busy' });
  });

  it('requires a namespace on namespaced calls', async () => {
    await expectCode(h.clients.images.List({ filters: [] }), Code.FAILED_PRECONDITION, 'namespace is required');
    await expectCode(h.clients.leases.Create({ id: 'x' }), Code.FAILED_PRECONDITION, 'namespace is required');
  });
});

describe('over ttrpc', () => {
  it('serves the same services with the ttrpc namespace header', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const pino = (await import('pino')).default;
    const { startPlugin } = await import('@boxd/plugin-kit');
    const { TtrpcClient, createTtrpcClient } = await import('@boxd/ttrpc');
    const { images, namespaces } = await import('@boxd/api');
    const { metadataPlugin } = await import('../src/index.js');
    const dir = await mkdtemp('/tmp/bx-mdt-');
    const plugin = await startPlugin(metadataPlugin, {
      address: `${dir}/md.ttrpc`,
      root: `${dir}/root`,
      config: { gc_startup_delay_ms: -1 },
      logger: pino({ level: 'silent' }),
    });
    const conn = await TtrpcClient.connect(`${dir}/md.ttrpc`);
    try {
      const img = createTtrpcClient(images.ImagesService, conn);
      await img.Create({ image: { name: 'over-ttrpc', target: { mediaType: 'm', digest: sha('9'), size: 1 } } }, { namespace: 'tt' });
      expect((await img.List({ filters: [] }, { namespace: 'tt' })).images.map((i) => i.name)).toEqual(['over-ttrpc']);
      await expectCode(img.Get({ name: 'nope' }, { namespace: 'tt' }), Code.NOT_FOUND, 'image "nope"');
      await expectCode(img.List({ filters: [] }), Code.FAILED_PRECONDITION, 'namespace is required');
      const ns = createTtrpcClient(namespaces.NamespacesService, conn);
      expect((await ns.List({ filter: '' })).namespaces.map((n) => n.name)).toEqual(['tt']);
    } finally {
      await conn.close();
      await plugin.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('namespace header', () => {
  it('must be a valid identifier', async () => {
    await expectCode(h.clients.images.List({ filters: [] }, inNs('bad ns')), Code.INVALID_ARGUMENT, /identifier "bad ns" must match/);
  });
});
