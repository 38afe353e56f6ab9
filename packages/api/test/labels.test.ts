import { describe, expect, it } from 'vitest';
import { Code, isBoxdError } from '../src/errors.js';
import {
  DEFAULT_RUNTIME,
  DEFAULT_SNAPSHOTTER,
  DISTRIBUTION_SOURCE_PREFIX,
  GC_EXPIRE,
  GC_FLAT,
  GC_REF_CONTENT,
  GC_REF_SNAPSHOT_PREFIX,
  GC_ROOT,
  IMAGE_NAME_ANNOTATION,
  LABEL_MAX_SIZE,
  OCI_REF_NAME_ANNOTATION,
  SNAPSHOT_LABEL_PREFIX,
  SNAPSHOT_REF,
  STOP_SIGNAL,
  UNCOMPRESSED,
  distributionSourceKey,
  gcContentRefs,
  gcRefContentKey,
  gcRefSnapshotKey,
  gcSnapshotRefs,
  validateLabel,
  validateLabels,
} from '../src/labels.js';

function thrown(fn: () => unknown): Error & { code: number } {
  try {
    fn();
  } catch (err) {
    expect(isBoxdError(err)).toBe(true);
    return err as Error & { code: number };
  }
  throw new Error('expected a throw');
}

describe('well-known labels', () => {
  it('have containerd’s exact spelling', () => {
    expect({
      GC_ROOT,
      GC_REF_CONTENT,
      GC_REF_SNAPSHOT_PREFIX,
      GC_EXPIRE,
      GC_FLAT,
      UNCOMPRESSED,
      DISTRIBUTION_SOURCE_PREFIX,
      SNAPSHOT_REF,
      SNAPSHOT_LABEL_PREFIX,
      DEFAULT_RUNTIME,
      DEFAULT_SNAPSHOTTER,
      STOP_SIGNAL,
      IMAGE_NAME_ANNOTATION,
      OCI_REF_NAME_ANNOTATION,
    }).toEqual({
      GC_ROOT: 'containerd.io/gc.root',
      GC_REF_CONTENT: 'containerd.io/gc.ref.content',
      GC_REF_SNAPSHOT_PREFIX: 'containerd.io/gc.ref.snapshot.',
      GC_EXPIRE: 'containerd.io/gc.expire',
      GC_FLAT: 'containerd.io/gc.flat',
      UNCOMPRESSED: 'containerd.io/uncompressed',
      DISTRIBUTION_SOURCE_PREFIX: 'containerd.io/distribution.source.',
      SNAPSHOT_REF: 'containerd.io/snapshot.ref',
      SNAPSHOT_LABEL_PREFIX: 'containerd.io/snapshot/',
      DEFAULT_RUNTIME: 'containerd.io/defaults/runtime',
      DEFAULT_SNAPSHOTTER: 'containerd.io/defaults/snapshotter',
      STOP_SIGNAL: 'io.containerd.image.config.stop-signal',
      IMAGE_NAME_ANNOTATION: 'io.containerd.image.name',
      OCI_REF_NAME_ANNOTATION: 'org.opencontainers.image.ref.name',
    });
  });

  it('key builders follow the observed conventions', () => {
    expect(gcRefContentKey()).toBe('containerd.io/gc.ref.content');
    expect(gcRefContentKey('m.0')).toBe('containerd.io/gc.ref.content.m.0');
    expect(gcRefContentKey('config')).toBe('containerd.io/gc.ref.content.config');
    expect(gcRefSnapshotKey('overlayfs')).toBe('containerd.io/gc.ref.snapshot.overlayfs');
    expect(distributionSourceKey('127.0.0.1:5123')).toBe('containerd.io/distribution.source.127.0.0.1');
    expect(distributionSourceKey('docker.io')).toBe('containerd.io/distribution.source.docker.io');
    expect(distributionSourceKey('[::1]:5000')).toBe('containerd.io/distribution.source.::1');
    expect(distributionSourceKey('::1')).toBe('containerd.io/distribution.source.::1');
  });
});

describe('validateLabels', () => {
  it('accepts empty, missing and ordinary labels', () => {
    expect(() => validateLabels(undefined)).not.toThrow();
    expect(() => validateLabels(null)).not.toThrow();
    expect(() => validateLabels({})).not.toThrow();
    expect(() => validateLabels({ [GC_ROOT]: '', 'a.b/c': 'value' })).not.toThrow();
  });

  it('allows key plus value up to exactly 4096 bytes', () => {
    expect(LABEL_MAX_SIZE).toBe(4096);
    expect(() => validateLabels({ k: 'v'.repeat(4095) })).not.toThrow();
    expect(() => validateLabels({ ['k'.repeat(4096)]: '' })).not.toThrow();
  });

  it('rejects key plus value over 4096 bytes', () => {
    const err = thrown(() => validateLabels({ ok: 'x', k: 'v'.repeat(4096) }));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toBe('label key and value length (4097 bytes) greater than maximum size (4096 bytes)');
  });

  it('counts UTF-8 bytes, not characters', () => {
    // 2048 two-byte characters plus a one-byte key: 4097 bytes in 2049 chars.
    expect(thrown(() => validateLabels({ k: 'é'.repeat(2048) })).message).toMatch(/\(4097 bytes\)/);
    expect(() => validateLabel('€', 'é'.repeat(2046))).not.toThrow(); // 3 + 4092 bytes
  });

  it('rejects an empty key', () => {
    const err = thrown(() => validateLabels({ '': 'x' }));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.message).toBe('label key must not be empty');
  });
});

describe('gcContentRefs', () => {
  it('collects the exact key and keys with a . or / suffix', () => {
    expect(
      gcContentRefs({
        'containerd.io/gc.ref.content': 'sha256:a',
        'containerd.io/gc.ref.content.m.0': 'sha256:b',
        'containerd.io/gc.ref.content.config': 'sha256:c',
        'containerd.io/gc.ref.content.l.1': 'sha256:d',
        'containerd.io/gc.ref.content/other': 'sha256:e',
      }),
    ).toEqual(['sha256:a', 'sha256:b', 'sha256:c', 'sha256:d', 'sha256:e']);
  });

  it('ignores undelimited suffixes, other labels and empty values', () => {
    expect(
      gcContentRefs({
        'containerd.io/gc.ref.contentx': 'sha256:x',
        'containerd.io/gc.ref.snapshot.overlayfs': 'sha256:y',
        'containerd.io/gc.root': 'sha256:z',
        'containerd.io/gc.ref.content.empty': '',
        'other.io/gc.ref.content': 'sha256:w',
      }),
    ).toEqual([]);
    expect(gcContentRefs(undefined)).toEqual([]);
  });
});

describe('gcSnapshotRefs', () => {
  it('reads the snapshotter from the key and the snapshot key from the value', () => {
    expect(
      gcSnapshotRefs({
        'containerd.io/gc.ref.snapshot.overlayfs': 'sha256:top',
        'containerd.io/gc.ref.snapshot.native/1': 'key-1',
        'containerd.io/gc.ref.snapshot.native/extra/parts': 'key-2',
      }),
    ).toEqual([
      { snapshotter: 'overlayfs', key: 'sha256:top' },
      { snapshotter: 'native', key: 'key-1' },
      { snapshotter: 'native', key: 'key-2' },
    ]);
  });

  it('ignores keys without a snapshotter, empty values and other labels', () => {
    expect(
      gcSnapshotRefs({
        'containerd.io/gc.ref.snapshot.': 'x',
        'containerd.io/gc.ref.snapshot./a': 'y',
        'containerd.io/gc.ref.snapshot.overlayfs': '',
        'containerd.io/gc.ref.content': 'sha256:a',
        'containerd.io/gc.ref.snapshot': 'z',
      }),
    ).toEqual([]);
    expect(gcSnapshotRefs(null)).toEqual([]);
  });
});
