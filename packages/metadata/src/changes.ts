/**
 * The store's generation, raised by every committed write transaction, and the
 * watchers waiting for it to move. Each watcher collects what was written since
 * it last looked, so one notice may stand for several commits.
 *
 * What was written is kept per table: the rows, while every write to the table
 * names its row and there are few enough of them; otherwise the whole table. A
 * reader that keeps answers per row can then keep the rows nobody touched.
 */

/** Rows past which a table counts as written as a whole. */
const MAX_ROWS = 64;

/** A row: its key, part by part. */
export type RowKey = readonly string[];

/** table → the rows written (JSON of each key), or null: the whole table. */
export type Writes = Map<string, Set<string> | null>;

export interface ChangeNotice {
  tables: string[];
  rows: Array<{ table: string; key: string[] }>;
}

/** A store key as a row key, if it is one: a string or an array of strings. */
export function rowKeyOf(key: unknown): RowKey | undefined {
  if (typeof key === 'string') return [key];
  if (Array.isArray(key) && key.every((part) => typeof part === 'string')) return key as string[];
  return undefined;
}

/** Adds a write of `row` (undefined: the whole table) to `writes`. */
export function addWrite(writes: Writes, table: string, row: RowKey | undefined): void {
  // A table already written whole takes no rows: no need to spell this one out.
  if (writes.get(table) === null) return;
  addRow(writes, table, row && JSON.stringify(row));
}

/** As addWrite, the row already in its JSON form (as Writes keeps it). */
function addRow(writes: Writes, table: string, row: string | undefined): void {
  const rows = writes.get(table);
  if (rows === null) return;
  if (row === undefined) {
    writes.set(table, null);
    return;
  }
  const set = rows ?? new Set<string>();
  set.add(row);
  writes.set(table, set.size > MAX_ROWS ? null : set);
}

function mergeWrites(into: Writes, from: Writes): void {
  for (const [table, rows] of from) {
    if (rows === null) addRow(into, table, undefined);
    else for (const row of rows) addRow(into, table, row);
  }
}

function noticeOf(writes: Writes): ChangeNotice {
  const rows: ChangeNotice['rows'] = [];
  for (const [table, keys] of writes) for (const key of keys ?? []) rows.push({ table, key: JSON.parse(key) as string[] });
  return { tables: [...writes.keys()], rows };
}

export class ChangeFeed {
  private current = 0;
  private readonly watchers = new Set<Watcher>();
  private closed = false;

  get generation(): number {
    return this.current;
  }

  /** A write transaction that made `writes` committed. */
  changed(writes: Writes): void {
    this.current++;
    for (const w of this.watchers) w.note(writes);
  }

  /** Watches open now. */
  get watching(): number {
    return this.watchers.size;
  }

  watch(): Watcher {
    const w = new Watcher(this.closed, () => this.watchers.delete(w));
    this.watchers.add(w);
    return w;
  }

  /** Ends every watch: the plugin is stopping, and an open stream would hold up its drain. */
  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.end();
  }
}

export class Watcher {
  private pending: Writes = new Map();
  private wake?: () => void;
  private wakeQueued = false;

  constructor(
    private ended: boolean,
    /** Stop collecting: the watch is over. */
    readonly close: () => void,
  ) {}

  /**
   * The notice goes out on the next turn of the event loop: the write that made it
   * answers within this turn, so its answer reaches the client first instead of
   * queueing behind a notice the core would also handle first.
   */
  note(writes: Writes): void {
    mergeWrites(this.pending, writes);
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.wake?.();
    });
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** What was written since the last call, once there is anything; undefined once the watch ends or `signal` aborts. */
  async next(signal: AbortSignal): Promise<ChangeNotice | undefined> {
    while (this.pending.size === 0 && !this.ended && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (this.ended || signal.aborted) return undefined;
    const notice = noticeOf(this.pending);
    this.pending = new Map();
    return notice;
  }
}
