/** What the store keeps per snapshot, and the shapes it hands out. */
import { snapshots } from '@boxd/api';

export type Kind = snapshots.Kind;
export const Kind = snapshots.Kind;

export interface Usage {
  /** Bytes of allocated blocks. */
  size: bigint;
  inodes: bigint;
}

export interface SnapshotRecord {
  /** Allocated from a counter; names the snapshot's directory on disk. */
  id: number;
  kind: Kind;
  /** Key of the committed parent, `''` for none. */
  parent: string;
  labels: Record<string, string>;
  /** Milliseconds since the epoch. */
  createdAt: number;
  updatedAt: number;
  /** Cached at commit; committed snapshots never change. */
  usage?: Usage;
}

export interface SnapshotInfo extends SnapshotRecord {
  key: string;
}

/** A snapshot together with the ids of its ancestors, nearest parent first. */
export interface SnapshotChain {
  info: SnapshotInfo;
  parentIds: number[];
}

export function kindName(kind: Kind): 'view' | 'active' | 'committed' | 'unknown' {
  switch (kind) {
    case Kind.VIEW:
      return 'view';
    case Kind.ACTIVE:
      return 'active';
    case Kind.COMMITTED:
      return 'committed';
    default:
      return 'unknown';
  }
}
