/**
 * One process of a task: the init process (exec id "") or an exec. Holds its status,
 * stdio and exit, and lets any number of callers wait for the exit.
 */
import { timestampFromNanos } from '@boxd/api';
import type { ProcessIO } from './stdio.js';
import type { ExitRecord, ProcessRecord, ProcessStatus } from './records.js';
import type { StdioSpec } from './stdio.js';

export class ShimProcess {
  pid = 0;
  startTime = '';
  status: ProcessStatus = 'created';
  io?: ProcessIO;
  exit?: ExitRecord;
  lastSignal?: number;
  /** OCI Process JSON of an exec, kept until it is started. */
  spec?: unknown;
  private readonly exitWaiters: ((exit: ExitRecord) => void)[] = [];
  /** Set once the exit is recorded and announced; until then Wait blocks. */
  private released = false;
  /** Exit events wait for this: /tasks/start (or exec-started) goes out first. */
  readonly startAnnounced: Promise<void>;
  announceStart!: () => void;

  constructor(
    readonly execId: string,
    readonly stdio: StdioSpec,
  ) {
    this.startAnnounced = new Promise((resolve) => (this.announceStart = resolve));
  }

  static fromRecord(record: ProcessRecord): ShimProcess {
    const p = new ShimProcess(record.execId, record.stdio);
    p.pid = record.pid;
    p.startTime = record.startTime;
    p.status = record.status;
    p.exit = record.exit;
    p.lastSignal = record.lastSignal;
    p.announceStart();
    if (p.exit) p.released = true;
    return p;
  }

  toRecord(): ProcessRecord {
    return {
      execId: this.execId,
      pid: this.pid,
      startTime: this.startTime,
      status: this.status,
      stdio: this.stdio,
      ...(this.exit ? { exit: this.exit } : {}),
      ...(this.lastSignal ? { lastSignal: this.lastSignal } : {}),
    };
  }

  get running(): boolean {
    return this.pid > 0 && !this.exit;
  }

  setExited(exit: ExitRecord): void {
    this.exit = exit;
    this.status = 'stopped';
  }

  /** Wakes every Wait; called once the exit has been recorded and announced. */
  releaseWaiters(): void {
    this.released = true;
    const exit = this.exit!;
    for (const wake of this.exitWaiters.splice(0)) wake(exit);
  }

  wait(): Promise<ExitRecord> {
    if (this.released) return Promise.resolve(this.exit!);
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  exitedAt(): ReturnType<typeof timestampFromNanos> | undefined {
    return this.exit ? timestampFromNanos(BigInt(this.exit.at)) : undefined;
  }
}
