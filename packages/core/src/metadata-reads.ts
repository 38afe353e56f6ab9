/**
 * What the core asks the metadata plugin, sorted by what it touches: which
 * answers the read cache may keep and under which row of the plugin's store,
 * and which rows or tables each write may change. Row keys follow the plugin's
 * table layout: namespaces by name, images [ns, name], containers [ns, id],
 * content [ns, digest], snapshots [ns, snapshotter, key].
 */
import { containers, content, images, leases, namespaces, snapshots, type MessageCodec } from '@boxd/api';

export type Table = 'namespaces' | 'images' | 'containers' | 'content' | 'snapshots';
export const TABLES: readonly Table[] = ['namespaces', 'images', 'containers', 'content', 'snapshots'];

export type RowKey = readonly string[];

/** A read of a written row the client makes next: made for the cache once the write is in. */
export interface ReadBack {
  service: string;
  method: string;
  payload: Uint8Array;
}

/** What a write may change: whole tables, and single rows. */
export interface Touched {
  tables: readonly Table[];
  rows: ReadonlyArray<{ table: Table; key: RowKey; readBack?: ReadBack }>;
}

export interface CachedRead {
  table: Table;
  /** The one row the answer is read from. */
  row(payload: Uint8Array, namespace: string): RowKey;
}

export interface ReadMethods {
  /** service/method → an answer that may be kept. */
  cached: ReadonlyMap<string, CachedRead>;
  /** Further calls that write nothing. */
  reads: ReadonlySet<string>;
  /** service/method → what it may write (given the request and namespace); calls in no list may write anything. */
  writes: ReadonlyMap<string, (payload: Uint8Array, namespace: string) => Touched>;
}

const NS = 'containerd.services.namespaces.v1.Namespaces';
const IMAGES = 'containerd.services.images.v1.Images';
const CONTAINERS = 'containerd.services.containers.v1.Containers';
const LEASES = 'containerd.services.leases.v1.Leases';
const CONTENT = 'boxd.metadata.v1.ContentIndex';
const SNAPSHOTS = 'boxd.metadata.v1.SnapshotIndex';

const each = (service: string, methods: string[]) => methods.map((m) => `${service}/${m}`);

function cached<T>(table: Table, codec: MessageCodec<T>, key: (req: T, ns: string) => RowKey): CachedRead {
  return { table, row: (payload, ns) => key(codec.decode(payload), ns) };
}

const nothing = (): Touched => ({ tables: [], rows: [] });
/** What a write of unknown reach may have touched. */
export const EVERYTHING: Touched = { tables: TABLES, rows: [] };
const wholeTables =
  (...tables: Table[]) =>
  (): Touched => ({ tables, rows: [] });

function rowsOf<T>(table: Table, codec: MessageCodec<T>, keys: (req: T, ns: string) => RowKey[]) {
  return (payload: Uint8Array, ns: string): Touched => ({ tables: [], rows: keys(codec.decode(payload), ns).map((key) => ({ table, key })) });
}

const snapshotRow = (req: { snapshotter: string; key: string }, ns: string): RowKey => [ns, req.snapshotter, req.key];

// ctr asks for the container it just created, and (for its mounts) the snapshot it just prepared.
function createdContainer(payload: Uint8Array, ns: string): Touched {
  const id = containers.CreateContainerRequest.decode(payload).container?.id ?? '';
  const readBack = { service: CONTAINERS, method: 'Get', payload: containers.GetContainerRequest.encode({ id }) };
  return { tables: [], rows: [{ table: 'containers', key: [ns, id], readBack }] };
}

function createdSnapshot(payload: Uint8Array, ns: string): Touched {
  const { snapshotter, key } = snapshots.PrepareSnapshotRequest.decode(payload);
  const readBack = { service: SNAPSHOTS, method: 'Resolve', payload: snapshots.MountsRequest.encode({ snapshotter, key }) };
  return { tables: [], rows: [{ table: 'snapshots', key: [ns, snapshotter, key], readBack }] };
}

export const METADATA_READS: ReadMethods = {
  cached: new Map<string, CachedRead>([
    [`${NS}/Get`, cached('namespaces', namespaces.GetNamespaceRequest, (req) => [req.name])],
    [`${IMAGES}/Get`, cached('images', images.GetImageRequest, (req, ns) => [ns, req.name])],
    [`${CONTAINERS}/Get`, cached('containers', containers.GetContainerRequest, (req, ns) => [ns, req.id])],
    [`${CONTENT}/Info`, cached('content', content.InfoRequest, (req, ns) => [ns, req.digest])],
    // Resolve also reads the parent's backend key, which never changes while it has children.
    [`${SNAPSHOTS}/Stat`, cached('snapshots', snapshots.StatSnapshotRequest, snapshotRow)],
    [`${SNAPSHOTS}/Resolve`, cached('snapshots', snapshots.MountsRequest, snapshotRow)],
  ]),
  reads: new Set([
    ...each(NS, ['List']),
    ...each(IMAGES, ['List']),
    ...each(CONTAINERS, ['List', 'ListStream']),
    ...each(LEASES, ['List', 'ListResources']),
    ...each(CONTENT, ['List', 'Locate', 'GetIngest', 'ListIngests']),
    ...each(SNAPSHOTS, ['List']),
    'boxd.metadata.v1.Changes/Watch',
  ]),
  // A delete with `sync` collects garbage before it returns, which may remove
  // content and snapshots; namespace changes are left out: they may write anything.
  writes: new Map<string, (payload: Uint8Array, namespace: string) => Touched>([
    [`${IMAGES}/Delete`, (payload, ns) => {
      const req = images.DeleteImageRequest.decode(payload);
      return req.sync ? EVERYTHING : { tables: [], rows: [{ table: 'images', key: [ns, req.name] }] };
    }],
    [`${LEASES}/Delete`, (payload) => (leases.DeleteRequest.decode(payload).sync ? EVERYTHING : nothing())],
    [`${IMAGES}/Create`, rowsOf('images', images.CreateImageRequest, (req, ns) => [[ns, req.image?.name ?? '']])],
    [`${IMAGES}/Update`, rowsOf('images', images.UpdateImageRequest, (req, ns) => [[ns, req.image?.name ?? '']])],
    [`${CONTAINERS}/Create`, createdContainer],
    [`${CONTAINERS}/Update`, rowsOf('containers', containers.UpdateContainerRequest, (req, ns) => [[ns, req.container?.id ?? '']])],
    [`${CONTAINERS}/Delete`, rowsOf('containers', containers.DeleteContainerRequest, (req, ns) => [[ns, req.id]])],
    ...each(LEASES, ['Create', 'AddResource', 'DeleteResource']).map((m) => [m, nothing] as const),
    [`${CONTENT}/Update`, rowsOf('content', content.UpdateRequest, (req, ns) => [[ns, req.info?.digest ?? '']])],
    [`${CONTENT}/Delete`, rowsOf('content', content.DeleteContentRequest, (req, ns) => [[ns, req.digest]])],
    ...each(CONTENT, ['Add', 'OpenIngest', 'PrepareCommit', 'AbortIngest']).map((m) => [m, wholeTables('content')] as const),
    ...each(SNAPSHOTS, ['Prepare', 'View']).map((m) => [m, createdSnapshot] as const),
    ...each(SNAPSHOTS, ['Commit', 'AbortCommit']).map(
      (m) => [m, rowsOf('snapshots', snapshots.CommitSnapshotRequest, (req, ns) => [snapshotRow(req, ns), [ns, req.snapshotter, req.name]])] as const,
    ),
    [`${SNAPSHOTS}/Update`, rowsOf('snapshots', snapshots.UpdateSnapshotRequest, (req, ns) => [[ns, req.snapshotter, req.info?.name ?? '']])],
    [`${SNAPSHOTS}/Remove`, rowsOf('snapshots', snapshots.RemoveSnapshotRequest, (req, ns) => [snapshotRow(req, ns)])],
  ]),
};
