import { describe, expect, it } from 'vitest';
import { Code, InvalidArgumentError, isBoxdError } from '../src/errors.js';
import {
  LABELS_MASK,
  applyFieldMask,
  applyLabelMask,
  splitMaskPath,
  type FieldMaskSpec,
} from '../src/fieldmask.js';

function thrown(fn: () => unknown): Error & { code: number } {
  try {
    fn();
  } catch (err) {
    expect(isBoxdError(err)).toBe(true);
    return err as Error & { code: number };
  }
  throw new Error('expected a throw');
}

describe('splitMaskPath', () => {
  it('splits at the first dot only', () => {
    expect(splitMaskPath('labels')).toEqual({ field: 'labels' });
    expect(splitMaskPath('labels.foo')).toEqual({ field: 'labels', key: 'foo' });
    expect(splitMaskPath('labels.containerd.io/gc.ref.content.m.0')).toEqual({
      field: 'labels',
      key: 'containerd.io/gc.ref.content.m.0',
    });
    expect(splitMaskPath('labels.')).toEqual({ field: 'labels', key: '' });
    expect(splitMaskPath('')).toEqual({ field: '' });
  });
});

describe('applyLabelMask', () => {
  const current = { keep: '1', change: 'old', drop: 'x' };

  it('an empty mask replaces all labels', () => {
    expect(applyLabelMask(current, { n: 'v' }, [], 'content info')).toEqual({ n: 'v' });
    expect(applyLabelMask(current, { n: 'v' }, undefined, 'content info')).toEqual({ n: 'v' });
    expect(applyLabelMask(current, undefined, null, 'content info')).toEqual({});
  });

  it('"labels" replaces all labels', () => {
    expect(applyLabelMask(current, { n: 'v' }, ['labels'], 'content info')).toEqual({ n: 'v' });
  });

  it('"labels.<k>" copies one key and keeps the rest', () => {
    expect(applyLabelMask(current, { change: 'new', other: 'ignored' }, ['labels.change'], 'x')).toEqual({
      keep: '1',
      change: 'new',
      drop: 'x',
    });
  });

  it('"labels.<k>" with a missing or empty value deletes the key', () => {
    expect(applyLabelMask(current, {}, ['labels.drop'], 'x')).toEqual({ keep: '1', change: 'old' });
    expect(applyLabelMask(current, { drop: '' }, ['labels.drop'], 'x')).toEqual({ keep: '1', change: 'old' });
    expect(applyLabelMask(current, {}, ['labels.absent'], 'x')).toEqual(current);
  });

  it('handles label keys containing dots and slashes (observed ctr usage)', () => {
    const update = {
      'containerd.io/gc.ref.content.m.0': 'sha256:m0',
      'containerd.io/uncompressed': 'sha256:diff',
      'containerd.io/gc.ref.snapshot.overlayfs': 'sha256:top',
      'containerd.io/distribution.source.127.0.0.1': 'test/bb2',
    };
    const paths = Object.keys(update).map((k) => `labels.${k}`);
    expect(applyLabelMask({ a: 'b' }, update, paths, 'content')).toEqual({ a: 'b', ...update });
  });

  it('applies paths in order', () => {
    expect(applyLabelMask(current, { n: 'v', keep: '2' }, ['labels', 'labels.keep'], 'x')).toEqual({
      n: 'v',
      keep: '2',
    });
    expect(applyLabelMask(current, { n: 'v' }, ['labels.change', 'labels'], 'x')).toEqual({ n: 'v' });
  });

  it('does not modify its inputs', () => {
    const cur = { a: '1' };
    const upd = { a: '2', b: '3' };
    const out = applyLabelMask(cur, upd, ['labels.a', 'labels.b'], 'x');
    expect(out).toEqual({ a: '2', b: '3' });
    expect(cur).toEqual({ a: '1' });
    expect(upd).toEqual({ a: '2', b: '3' });
    expect(applyLabelMask(cur, upd, ['labels'], 'x')).not.toBe(upd);
  });

  it('keeps "__proto__" a plain key', () => {
    const update = JSON.parse('{"__proto__": "v"}') as Record<string, string>;
    const out = applyLabelMask({}, update, ['labels.__proto__'], 'x');
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(applyLabelMask({}, {}, ['labels.constructor'], 'x')).toEqual({});
  });

  it.each(['name', 'labels.', 'label', 'Labels', 'target', ''])('rejects %j', (path) => {
    const err = thrown(() => applyLabelMask(current, {}, ['labels.keep', path], 'content info "sha256:abc"'));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toBe(`cannot update ${JSON.stringify(path)} field on content info "sha256:abc"`);
  });
});

describe('applyFieldMask', () => {
  interface Image {
    name: string;
    labels: Record<string, string>;
    target?: { digest: string; mediaType: string };
    annotations?: Record<string, string>;
  }
  const IMAGE_MASK: FieldMaskSpec<Image> = {
    fields: { labels: 'map', target: 'value', annotations: 'map' },
    whenEmpty: ['labels', 'target'],
  };
  const img: Image = {
    name: 'docker.io/library/busybox:latest',
    labels: { a: '1' },
    target: { digest: 'sha256:old', mediaType: 'm' },
    annotations: { x: 'y' },
  };

  it('applies the spec’s default paths for an empty mask', () => {
    const update: Image = { name: img.name, labels: { b: '2' }, target: { digest: 'sha256:new', mediaType: 'm' } };
    const out = applyFieldMask(img, update, [], IMAGE_MASK, 'image');
    expect(out).toEqual({ ...img, labels: { b: '2' }, target: update.target });
    expect(img.labels).toEqual({ a: '1' });
  });

  it('value fields copy from the update; map fields take keys', () => {
    const update: Image = {
      name: 'ignored',
      labels: {},
      target: { digest: 'sha256:new', mediaType: 'm' },
      annotations: { z: 'w' },
    };
    expect(applyFieldMask(img, update, ['target'], IMAGE_MASK, 'image').target).toEqual(update.target);
    expect(applyFieldMask(img, update, ['annotations.z'], IMAGE_MASK, 'image').annotations).toEqual({ x: 'y', z: 'w' });
    expect(applyFieldMask(img, update, ['annotations'], IMAGE_MASK, 'image').annotations).toEqual({ z: 'w' });
    expect(applyFieldMask(img, update, ['labels.a'], IMAGE_MASK, 'image').labels).toEqual({});
    expect(applyFieldMask(img, update, ['target'], IMAGE_MASK, 'image').name).toBe(img.name);
  });

  it('a value field has no key form', () => {
    expect(thrown(() => applyFieldMask(img, img, ['target.digest'], IMAGE_MASK, 'image "x"')).message).toBe(
      'cannot update "target.digest" field on image "x"',
    );
  });

  it('rejects every path before applying any', () => {
    let called = false;
    const spec: FieldMaskSpec<Image> = {
      fields: { labels: () => (called = true) },
      whenEmpty: ['labels'],
    };
    expect(() => applyFieldMask(img, img, ['labels', 'bogus'], spec, 'image')).toThrow(/"bogus"/);
    expect(called).toBe(false);
  });

  it('maps path names to property names and supports custom rules (containers)', () => {
    interface Container {
      id: string;
      image: string;
      snapshotKey: string;
      spec?: { typeUrl: string; value: Uint8Array };
      labels: Record<string, string>;
      extensions: Record<string, { typeUrl: string; value: Uint8Array }>;
      updatedBy?: string;
    }
    const CONTAINER_MASK: FieldMaskSpec<Container> = {
      fields: {
        labels: 'map',
        extensions: 'map',
        spec: 'value',
        image: 'value',
        snapshotkey: { kind: 'value', prop: 'snapshotKey' },
        audit: (target, update, key) => {
          target.updatedBy = `${key ?? 'all'}:${update.id}`;
        },
      },
      whenEmpty: ['labels', 'spec', 'extensions', 'image', 'snapshotkey'],
    };
    const ext = { typeUrl: 't', value: new Uint8Array([1]) };
    const cur: Container = { id: 'c1', image: 'i1', snapshotKey: 's1', labels: { l: '1' }, extensions: { e1: ext } };
    const upd: Container = {
      id: 'c1',
      image: 'i2',
      snapshotKey: 's2',
      spec: { typeUrl: 'spec', value: new Uint8Array() },
      labels: {},
      extensions: { e2: ext },
    };
    expect(applyFieldMask(cur, upd, ['snapshotkey'], CONTAINER_MASK, 'container').snapshotKey).toBe('s2');
    expect(applyFieldMask(cur, upd, ['extensions.e2'], CONTAINER_MASK, 'container').extensions).toEqual({
      e1: ext,
      e2: ext,
    });
    expect(applyFieldMask(cur, upd, ['extensions.e1'], CONTAINER_MASK, 'container').extensions).toEqual({});
    expect(applyFieldMask(cur, upd, ['audit.k'], CONTAINER_MASK, 'container').updatedBy).toBe('k:c1');
    expect(applyFieldMask(cur, upd, [], CONTAINER_MASK, 'container')).toEqual({ ...upd, labels: {} });
    expect(() => applyFieldMask(cur, upd, ['snapshotKey'], CONTAINER_MASK, 'container')).toThrow(
      'cannot update "snapshotKey" field on container',
    );
  });

  it('LABELS_MASK is the labels-only spec', () => {
    const out = applyFieldMask({ labels: { a: '1' } }, { labels: { b: '2' } }, [], LABELS_MASK, 'namespace');
    expect(out.labels).toEqual({ b: '2' });
  });
});
