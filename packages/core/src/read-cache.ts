/**
 * Answers of the metadata plugin kept in the core. Starting one container has
 * `ctr` ask for the same image, namespace, container and blob records a dozen
 * times, and each answer is a hop to another process; a hit costs a map lookup.
 *
 * Every kept answer was read from one row of the plugin's store (see
 * metadata-reads.ts), and is kept only while that row is known to be current:
 * - the plugin's change notices (boxd.metadata.v1.Changes.Watch) are flowing on
 *   the connection; until the first notice, and after the stream ends, nothing
 *   is kept or served;
 * - a notice drops the answers of the rows it names, and of each table it
 *   names without rows (written as a whole);
 * - a relayed call that may write drops the answers of what it may write, both
 *   when it is sent and when it returns, so a client reads its own writes even
 *   before the notice arrives; a call not known drops everything;
 * - an answer is stored only if its row and table were not dropped while it
 *   was on its way and no write to them was in flight, so an answer read
 *   before a change is never kept after it.
 * Changes nobody relayed through the core (garbage collection, expiries) are
 * seen when their notice arrives, as they would be by a client racing them.
 */
import { EVERYTHING, METADATA_READS, TABLES, type CachedRead, type ReadBack, type ReadMethods, type RowKey, type Table, type Touched } from './metadata-reads.js';
import { Prefetches } from './prefetch.js';

/** Sends a read to the plugin, past the cache. */
export type ReadSender = (service: string, method: string, namespace: string, payload: Uint8Array) => Promise<Buffer>;

/** A change notice as the plugin sends it. */
export interface Notice {
  tables?: string[];
  rows?: Array<{ table?: string; key?: string[] }>;
}

const MAX_ENTRY_BYTES = 64 * 1024;
const MAX_BYTES = 8 * 1024 * 1024;
/** Rows whose last drop is remembered; past this, every table counts as dropped now. */
const MAX_DROPPED_ROWS = 10_000;

const rowId = (table: Table, key: RowKey) => `${table}\0${JSON.stringify(key)}`;
const requestKey = (name: string, namespace: string, payload: Uint8Array) =>
  `${name}\0${namespace}\0${Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1')}`;

/** A request that does not decode may still be taken by the plugin somehow: assume the worst. */
function touchedBy(describe: (payload: Uint8Array, ns: string) => Touched, payload: Uint8Array, ns: string): Touched {
  try {
    return describe(payload, ns);
  } catch {
    return EVERYTHING;
  }
}

/** Where a cached read's answer lives; undefined when its request does not decode. */
function readTarget(read: CachedRead, name: string, namespace: string, payload: Uint8Array): { table: Table; row: string; request: string } | undefined {
  let key: RowKey;
  try {
    key = read.row(payload, namespace);
  } catch {
    return undefined;
  }
  return { table: read.table, row: rowId(read.table, key), request: requestKey(name, namespace, payload) };
}

/** Counts per name, gone at zero. */
class Counter extends Map<string, number> {
  up(name: string): void {
    this.set(name, (this.get(name) ?? 0) + 1);
  }

  down(name: string): void {
    const n = (this.get(name) ?? 0) - 1;
    if (n > 0) this.set(name, n);
    else this.delete(name);
  }
}

export class ReadCache {
  /** table → row → request key → answer: a drop clears a row or a table in one step. */
  private readonly entries = new Map<Table, Map<string, Map<string, Buffer>>>(TABLES.map((t) => [t, new Map()]));
  private bytes = 0;
  /** Raised by every drop; an answer may be kept if nothing it depends on was dropped after it was asked for. */
  private clock = 0;
  private readonly tableDroppedAt = new Map<Table, number>(TABLES.map((t) => [t, 0]));
  private rowDroppedAt = new Map<string, number>();
  /** Writes in flight, by table (whole-table writes) and by row. */
  private readonly writing = new Counter();
  /** The watch whose notices are trusted; older ones are ignored. */
  private watchId = 0;
  private live = false;
  private readonly prefetches = new Prefetches();
  private sender?: ReadSender;

  constructor(private readonly methods: ReadMethods = METADATA_READS) {}

  /** How the cache makes reads of its own (see prefetch.ts); without one it makes none. */
  sendWith(sender: ReadSender): void {
    this.sender = sender;
  }

  /** A unary call through the cache: kept, passed straight on, or treated as a write. */
  call(service: string, method: string, namespace: string, payload: Uint8Array, send: () => Promise<Buffer>): Promise<Buffer> {
    const name = `${service}/${method}`;
    const cached = this.methods.cached.get(name);
    if (cached) {
      const target = readTarget(cached, name, namespace, payload);
      return target ? this.read(target.table, target.row, target.request, send) : send();
    }
    if (this.methods.reads.has(name)) return send();
    const writes = this.methods.writes.get(name);
    return this.write(writes ? touchedBy(writes, payload, namespace) : EVERYTHING, namespace, send);
  }

  /** The read the client makes next of a row a write made (see prefetch.ts), as the cache's own. */
  private readBack(table: Table, row: string, namespace: string, back: ReadBack): void {
    const sender = this.sender;
    if (!this.live || !sender) return;
    const request = requestKey(`${back.service}/${back.method}`, namespace, back.payload);
    this.read(table, row, request, () => sender(back.service, back.method, namespace, back.payload)).catch(() => undefined);
  }

  /** Takes the notices of a watch stream; the previous watch, if any, stops counting. */
  async follow(notices: AsyncIterable<Notice>): Promise<void> {
    const id = ++this.watchId;
    this.goDown();
    try {
      for await (const notice of notices) {
        if (id !== this.watchId) return;
        if (!this.live) {
          this.drop(EVERYTHING);
          this.live = true;
        }
        const touched = this.touchedByNotice(notice);
        this.drop(touched);
        for (const { table, key } of touched.rows) {
          const row = rowId(table, key);
          this.prefetches.notice(row, this.writing.has(row));
        }
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
    this.prefetches.clear();
    this.drop(EVERYTHING);
  }

  get size(): number {
    let n = 0;
    for (const rows of this.entries.values()) for (const answers of rows.values()) n += answers.size;
    return n;
  }

  /** A table named without rows was written as a whole; tables the cache does not keep are left out. */
  private touchedByNotice(notice: Notice): Touched {
    const known = (t: string | undefined): t is Table => this.tableDroppedAt.has(t as Table);
    const rows = (notice.rows ?? []).filter((r) => known(r.table)).map((r) => ({ table: r.table as Table, key: r.key ?? [] }));
    const withRows = new Set(rows.map((r) => r.table));
    return { tables: (notice.tables ?? []).filter(known).filter((t) => !withRows.has(t)), rows };
  }

  private async read(table: Table, row: string, request: string, send: () => Promise<Buffer>): Promise<Buffer> {
    if (this.live) {
      const hit = this.entries.get(table)!.get(row)?.get(request);
      if (hit) return hit;
    }
    const askedAt = this.clock;
    const res = await send();
    if (this.live && this.unchangedSince(table, row, askedAt)) this.store(table, row, request, res);
    return res;
  }

  private unchangedSince(table: Table, row: string, askedAt: number): boolean {
    return (
      this.tableDroppedAt.get(table)! <= askedAt &&
      (this.rowDroppedAt.get(row) ?? 0) <= askedAt &&
      !this.writing.has(table) &&
      !this.writing.has(row)
    );
  }

  private async write(touched: Touched, namespace: string, send: () => Promise<Buffer>): Promise<Buffer> {
    const rows = touched.rows.map((r) => rowId(r.table, r.key));
    const names = [...touched.tables, ...rows];
    this.drop(touched);
    for (const n of names) this.writing.up(n);
    let done = false;
    try {
      const res = await send();
      done = true;
      return res;
    } finally {
      for (const n of names) this.writing.down(n);
      this.drop(touched);
      touched.rows.forEach(({ table, readBack }, i) => {
        const row = rows[i]!;
        this.prefetches.written(row, done && readBack ? () => this.readBack(table, row, namespace, readBack) : undefined);
      });
    }
  }

  private store(table: Table, row: string, request: string, value: Buffer): void {
    const rows = this.entries.get(table)!;
    let answers = rows.get(row);
    if (value.length > MAX_ENTRY_BYTES || answers?.has(request)) return;
    if (!answers) rows.set(row, (answers = new Map()));
    answers.set(request, value);
    this.bytes += value.length + request.length;
    // Over budget: the oldest rows go, this table's first.
    for (const t of [table, ...TABLES]) {
      for (const oldest of this.entries.get(t)!.keys()) {
        if (this.bytes <= MAX_BYTES) return;
        this.forgetRow(t, oldest);
      }
    }
  }

  private drop(touched: Touched): void {
    this.clock++;
    for (const t of touched.tables) {
      this.tableDroppedAt.set(t, this.clock);
      for (const row of this.entries.get(t)!.keys()) this.forgetRow(t, row);
    }
    for (const { table, key } of touched.rows) {
      const row = rowId(table, key);
      this.rowDroppedAt.set(row, this.clock);
      this.forgetRow(table, row);
    }
    if (this.rowDroppedAt.size > MAX_DROPPED_ROWS) {
      // Forgetting which rows changed when is safe only if every table counts as changed now.
      for (const t of TABLES) this.tableDroppedAt.set(t, this.clock);
      this.rowDroppedAt = new Map();
    }
  }

  private forgetRow(table: Table, row: string): void {
    const rows = this.entries.get(table)!;
    const answers = rows.get(row);
    if (!answers) return;
    for (const [request, value] of answers) this.bytes -= value.length + request.length;
    rows.delete(row);
  }
}
