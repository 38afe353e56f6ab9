/**
 * Answers of the metadata plugin kept in the core. Starting one container has
 * `ctr` ask for the same image, namespace, container and blob records a dozen
 * times, and each answer is a hop to another process; a hit costs a map lookup.
 *
 * An answer is kept only while it is known to be current:
 * - the plugin's change notices (boxd.metadata.v1.Changes.Watch) are flowing on
 *   the connection; until the first notice, and after the stream ends, nothing
 *   is kept or served;
 * - a notice drops the answers read from the tables it names;
 * - a relayed call that may write drops the answers of the tables it may
 *   write, both when it is sent and when it returns, so a client reads its own
 *   writes even before the notice arrives; a call not known drops everything;
 * - an answer is stored only if its tables were not dropped while it was on
 *   its way and no write to them was in flight, so an answer read before a
 *   change is never kept after it.
 * Changes nobody relayed through the core (garbage collection, expiries) are
 * seen when their notice arrives, as they would be by a client racing them.
 */

import { images, leases } from '@boxd/api';

type Table = 'namespaces' | 'images' | 'containers' | 'content' | 'snapshots';
const TABLES: readonly Table[] = ['namespaces', 'images', 'containers', 'content', 'snapshots'];

export interface ReadMethods {
  /** service/method → the tables its answer is read from: answers that may be kept. */
  cached: ReadonlyMap<string, Table>;
  /** Further calls that write nothing. */
  reads: ReadonlySet<string>;
  /** service/method → the tables it may write (given the request); calls in no list may write any. */
  writes: ReadonlyMap<string, readonly Table[] | ((payload: Uint8Array) => readonly Table[])>;
}

const NS = 'containerd.services.namespaces.v1.Namespaces';
const IMAGES = 'containerd.services.images.v1.Images';
const CONTAINERS = 'containerd.services.containers.v1.Containers';
const LEASES = 'containerd.services.leases.v1.Leases';
const CONTENT = 'boxd.metadata.v1.ContentIndex';
const SNAPSHOTS = 'boxd.metadata.v1.SnapshotIndex';

const each = (service: string, methods: string[]) => methods.map((m) => `${service}/${m}`);

/** What the core asks the metadata plugin, sorted by what it touches. */
export const METADATA_READS: ReadMethods = {
  cached: new Map<string, Table>([
    [`${NS}/Get`, 'namespaces'],
    [`${IMAGES}/Get`, 'images'],
    [`${CONTAINERS}/Get`, 'containers'],
    [`${CONTENT}/Info`, 'content'],
    [`${SNAPSHOTS}/Stat`, 'snapshots'],
    [`${SNAPSHOTS}/Resolve`, 'snapshots'],
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
  writes: new Map<string, readonly Table[] | ((payload: Uint8Array) => readonly Table[])>([
    [`${IMAGES}/Delete`, (payload) => (images.DeleteImageRequest.decode(payload).sync ? TABLES : ['images'])],
    [`${LEASES}/Delete`, (payload) => (leases.DeleteRequest.decode(payload).sync ? TABLES : [])],
    ...each(IMAGES, ['Create', 'Update']).map((m) => [m, ['images']] as const),
    ...each(CONTAINERS, ['Create', 'Update', 'Delete']).map((m) => [m, ['containers']] as const),
    ...each(LEASES, ['Create', 'AddResource', 'DeleteResource']).map((m) => [m, []] as const),
    ...each(CONTENT, ['Update', 'Delete', 'Add', 'OpenIngest', 'PrepareCommit', 'AbortIngest']).map((m) => [m, ['content']] as const),
    ...each(SNAPSHOTS, ['Prepare', 'View', 'Commit', 'AbortCommit', 'Update', 'Remove']).map((m) => [m, ['snapshots']] as const),
  ]),
};

/** A request that does not decode may still be taken by the plugin somehow: assume the worst. */
function writesOf(tablesFor: (payload: Uint8Array) => readonly Table[], payload: Uint8Array): readonly Table[] {
  try {
    return tablesFor(payload);
  } catch {
    return TABLES;
  }
}

const MAX_ENTRY_BYTES = 64 * 1024;
const MAX_BYTES = 8 * 1024 * 1024;

export class ReadCache {
  /** Per table, so dropping a table's answers (on every relayed write) clears one map. */
  private readonly entries = new Map<Table, Map<string, Buffer>>(TABLES.map((t) => [t, new Map()]));
  private bytes = 0;
  /** Per table, raised by everything that drops its answers. */
  private readonly epochs = new Map<Table, number>(TABLES.map((t) => [t, 0]));
  private readonly writesInFlight = new Map<Table, number>(TABLES.map((t) => [t, 0]));
  /** The watch whose notices are trusted; older ones are ignored. */
  private watchId = 0;
  private live = false;

  constructor(private readonly methods: ReadMethods = METADATA_READS) {}

  /** A unary call through the cache: kept, passed straight on, or treated as a write. */
  call(service: string, method: string, namespace: string, payload: Uint8Array, send: () => Promise<Buffer>): Promise<Buffer> {
    const name = `${service}/${method}`;
    const table = this.methods.cached.get(name);
    if (table) return this.read(table, `${name}\0${namespace}\0${Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1')}`, send);
    if (this.methods.reads.has(name)) return send();
    const writes = this.methods.writes.get(name) ?? TABLES;
    return this.write(typeof writes === 'function' ? writesOf(writes, payload) : writes, send);
  }

  /** Takes the notices of a watch stream; the previous watch, if any, stops counting. */
  async follow(notices: AsyncIterable<{ tables?: string[] }>): Promise<void> {
    const id = ++this.watchId;
    this.goDown();
    try {
      for await (const notice of notices) {
        if (id !== this.watchId) return;
        if (!this.live) {
          this.drop(TABLES);
          this.live = true;
        }
        this.drop((notice.tables ?? []).filter((t): t is Table => this.epochs.has(t as Table)));
      }
    } catch {
      // The connection went or the plugin has no Changes service: nothing is kept.
    } finally {
      if (id === this.watchId) this.goDown();
    }
  }

  /** The connection the notices came on is gone. */
  goDown(): void {
    this.live = false;
    this.drop(TABLES);
  }

  get size(): number {
    let n = 0;
    for (const table of this.entries.values()) n += table.size;
    return n;
  }

  private async read(table: Table, key: string, send: () => Promise<Buffer>): Promise<Buffer> {
    if (this.live) {
      const hit = this.entries.get(table)!.get(key);
      if (hit) return hit;
    }
    const epoch = this.epochs.get(table);
    const res = await send();
    if (this.live && this.epochs.get(table) === epoch && this.writesInFlight.get(table) === 0) this.store(table, key, res);
    return res;
  }

  private async write(tables: readonly Table[], send: () => Promise<Buffer>): Promise<Buffer> {
    this.drop(tables);
    for (const t of tables) this.writesInFlight.set(t, this.writesInFlight.get(t)! + 1);
    try {
      return await send();
    } finally {
      for (const t of tables) this.writesInFlight.set(t, this.writesInFlight.get(t)! - 1);
      this.drop(tables);
    }
  }

  private store(table: Table, key: string, value: Buffer): void {
    const answers = this.entries.get(table)!;
    if (value.length > MAX_ENTRY_BYTES || answers.has(key)) return;
    answers.set(key, value);
    this.bytes += value.length + key.length;
    // Over budget: the oldest answers go, this table's first.
    for (const t of [table, ...TABLES]) {
      for (const [oldest, old] of this.entries.get(t)!) {
        if (this.bytes <= MAX_BYTES) return;
        this.entries.get(t)!.delete(oldest);
        this.bytes -= old.length + oldest.length;
      }
    }
  }

  private drop(tables: readonly Table[]): void {
    for (const t of tables) {
      this.epochs.set(t, this.epochs.get(t)! + 1);
      const answers = this.entries.get(t)!;
      for (const [key, value] of answers) this.bytes -= value.length + key.length;
      answers.clear();
    }
  }
}
