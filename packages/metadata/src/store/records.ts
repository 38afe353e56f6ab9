/**
 * What is stored per object (msgpackr-encoded by lmdb). Times are ms since
 * the epoch, sizes are bigint so they stay exact.
 */

export type Labels = Record<string, string>;

export interface NamespaceRecord {
  labels: Labels;
  createdAt: number;
}

export interface AnyRecord {
  typeUrl: string;
  value: Uint8Array;
}

export interface DescriptorRecord {
  mediaType: string;
  digest: string;
  size: bigint;
  annotations: Labels;
}

export interface ImageRecord {
  labels: Labels;
  target: DescriptorRecord;
  createdAt: number;
  updatedAt: number;
}

export interface ContainerRecord {
  labels: Labels;
  image: string;
  runtime: { name: string; options?: AnyRecord };
  spec?: AnyRecord;
  snapshotter: string;
  snapshotKey: string;
  extensions: Record<string, AnyRecord>;
  createdAt: number;
  updatedAt: number;
}

export interface LeaseRecord {
  labels: Labels;
  createdAt: number;
}

export interface ContentRecord {
  size: bigint;
  labels: Labels;
  createdAt: number;
  updatedAt: number;
}

export type BlobHolder = bigint;

export interface IngestRecord {
  backendRef: string;
  expected: string;
  total: bigint;
  startedAt: number;
  /** Set when opened without a lease: a GC root until then. */
  expiresAt?: number;
  lease?: string;
  /** Digest declared by PrepareCommit. */
  committing?: string;
}

export const SnapshotKind = { VIEW: 1, ACTIVE: 2, COMMITTED: 3 } as const;
export type SnapshotKind = (typeof SnapshotKind)[keyof typeof SnapshotKind];

export interface SnapshotRecord {
  backendKey: string;
  /** Parent in client terms (a committed name in the same namespace and snapshotter). */
  parent: string;
  kind: SnapshotKind;
  labels: Labels;
  createdAt: number;
  updatedAt: number;
}

export interface BackendKeyOwner {
  ns: string;
  key: string;
}

/** An active snapshot whose key was committed; kept until the backend commit is done. */
export interface RetiredSnapshot {
  ns: string;
  key: string;
  name: string;
  record: SnapshotRecord;
  retiredAt: number;
}
