/**
 * Watches processes we cannot waitpid() for: those of containers adopted by a restarted
 * shim (they were reparented away from the old shim when it died). A pid counts as gone
 * when /proc no longer shows a live process with the start time we recorded.
 */
import { processStartTime } from './records.js';

const POLL_MS = 200;

export class LivenessWatcher {
  private readonly watched = new Map<number, { startTime: string; gone: () => void }>();
  private timer?: NodeJS.Timeout;

  watch(pid: number, startTime: string, gone: () => void): void {
    this.watched.set(pid, { startTime, gone });
    this.timer ??= setInterval(() => this.check(), POLL_MS);
  }

  unwatch(pid: number): void {
    this.watched.delete(pid);
    this.stopIfIdle();
  }

  private check(): void {
    for (const [pid, w] of this.watched) {
      if (processStartTime(pid) === w.startTime) continue;
      this.watched.delete(pid);
      w.gone();
    }
    this.stopIfIdle();
  }

  private stopIfIdle(): void {
    if (this.watched.size || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
