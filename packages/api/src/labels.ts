/** Well-known labels and annotations, and the rules every label map obeys. */
import { InvalidArgumentError } from './errors.js';

/** Object is a GC root while it carries this label (value ignored). */
export const GC_ROOT = 'containerd.io/gc.root';
/** Value is a digest the labelled object keeps alive; also the prefix of `.<suffix>` / `/<suffix>` variants. */
export const GC_REF_CONTENT = 'containerd.io/gc.ref.content';
/** Followed by a snapshotter name; value is a snapshot key in that snapshotter. */
export const GC_REF_SNAPSHOT_PREFIX = 'containerd.io/gc.ref.snapshot.';
/** On a lease: RFC 3339 time after which it stops protecting anything. */
export const GC_EXPIRE = 'containerd.io/gc.expire';
/** On a lease: protect only directly attached resources, not what their labels reference. */
export const GC_FLAT = 'containerd.io/gc.flat';
/** On a compressed layer blob: the DiffID (digest of the uncompressed tar). */
export const UNCOMPRESSED = 'containerd.io/uncompressed';
/** Followed by a registry host without port; value is a comma-separated repository list. */
export const DISTRIBUTION_SOURCE_PREFIX = 'containerd.io/distribution.source.';
/** In Prepare labels: the target chain ID, for remote snapshotters. */
export const SNAPSHOT_REF = 'containerd.io/snapshot.ref';
/** Labels with this prefix are passed through to the snapshotter implementation. */
export const SNAPSHOT_LABEL_PREFIX = 'containerd.io/snapshot/';
/** The labels a snapshotter is given of a snapshot's: the rest stay in the metadata store. */
export function snapshotBackendLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith(SNAPSHOT_LABEL_PREFIX) || k === SNAPSHOT_REF));
}
/** Namespace label: default runtime for containers in it. */
export const DEFAULT_RUNTIME = 'containerd.io/defaults/runtime';
/** Namespace label: default snapshotter for the namespace. */
export const DEFAULT_SNAPSHOTTER = 'containerd.io/defaults/snapshotter';
/** Container label: stop signal taken from the image config. */
export const STOP_SIGNAL = 'io.containerd.image.config.stop-signal';
/** Index/manifest annotation carrying the full image name in containerd-made archives. */
export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
/** OCI annotation carrying the reference (often only the tag) of a manifest in an index. */
export const OCI_REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** Key plus value, in UTF-8 bytes. */
export const LABEL_MAX_SIZE = 4096;

export type Labels = Readonly<Record<string, string>>;

export function validateLabel(key: string, value: string): void {
  if (key === '') throw new InvalidArgumentError('label key must not be empty');
  const size = Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value ?? '', 'utf8');
  if (size > LABEL_MAX_SIZE) {
    throw new InvalidArgumentError(
      `label key and value length (${size} bytes) greater than maximum size (${LABEL_MAX_SIZE} bytes)`,
    );
  }
}

/** Throws InvalidArgumentError for the first label that is empty-keyed or too large. */
export function validateLabels(labels: Labels | null | undefined): void {
  if (!labels) return;
  for (const [key, value] of Object.entries(labels)) validateLabel(key, value);
}

/** `containerd.io/gc.ref.content` plus an optional suffix, e.g. `m.0`, `config`, `l.1`. */
export function gcRefContentKey(suffix?: string): string {
  return suffix ? `${GC_REF_CONTENT}.${suffix}` : GC_REF_CONTENT;
}

export function gcRefSnapshotKey(snapshotter: string): string {
  return GC_REF_SNAPSHOT_PREFIX + snapshotter;
}

/**
 * The distribution-source label key for a registry host. The port is dropped
 * (`127.0.0.1:5000` -> `...source.127.0.0.1`) as containerd does, so blobs
 * from one host share a key whatever port served them.
 */
export function distributionSourceKey(host: string): string {
  let name = host;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    name = close > 0 ? name.slice(1, close) : name;
  } else if (name.indexOf(':') === name.lastIndexOf(':')) {
    // A single colon separates the port; several mean a bare IPv6 address.
    const colon = name.indexOf(':');
    if (colon >= 0) name = name.slice(0, colon);
  }
  return DISTRIBUTION_SOURCE_PREFIX + name;
}

/** Digests referenced through `containerd.io/gc.ref.content[.|/]...` labels. */
export function gcContentRefs(labels: Labels | null | undefined): string[] {
  const refs: string[] = [];
  if (!labels) return refs;
  for (const [key, value] of Object.entries(labels)) {
    if (!value || !key.startsWith(GC_REF_CONTENT)) continue;
    const sep = key.charAt(GC_REF_CONTENT.length);
    // `gc.ref.contentfoo` is not a reference: the suffix must be delimited.
    if (sep === '' || sep === '.' || sep === '/') refs.push(value);
  }
  return refs;
}

export interface SnapshotRef {
  snapshotter: string;
  key: string;
}

/** Snapshots referenced through `containerd.io/gc.ref.snapshot.<snapshotter>[/...]` labels. */
export function gcSnapshotRefs(labels: Labels | null | undefined): SnapshotRef[] {
  const refs: SnapshotRef[] = [];
  if (!labels) return refs;
  for (const [key, value] of Object.entries(labels)) {
    if (!value || !key.startsWith(GC_REF_SNAPSHOT_PREFIX)) continue;
    const rest = key.slice(GC_REF_SNAPSHOT_PREFIX.length);
    // Text after a further `/` lets one object reference several snapshots of one snapshotter.
    const slash = rest.indexOf('/');
    const snapshotter = slash < 0 ? rest : rest.slice(0, slash);
    if (snapshotter) refs.push({ snapshotter, key: value });
  }
  return refs;
}
