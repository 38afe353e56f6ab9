/**
 * Tells a container when an OOM may have happened in its cgroup, so it can look at
 * the cgroup's OOM-kill counter.
 *
 * cgroup v1: the memory controller signals an eventfd registered in the cgroup's
 * cgroup.event_control against memory.oom_control, as upstream's shim uses it. It
 * signals as an OOM starts (before the kill is counted), often several times for one.
 *
 * cgroup v2: every two seconds, for all the watched cgroups at once (this machine's
 * v2 hierarchy has no memory controller to test memory.events' notices against).
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupPaths } from './cgroups.js';
import { EventfdSet } from './eventfds.js';

const V2_POLL_MS = 2_000;

/** Stops the watch. */
export type StopWatch = () => void;

export class OomEvents {
  private readonly eventfds = new EventfdSet();
  private readonly polled = new Set<() => void>();
  private timer?: NodeJS.Timeout;

  /** Calls `oom` whenever the cgroup may have had an OOM, until stopped; undefined without a memory controller. */
  watch(paths: CgroupPaths, oom: () => void): StopWatch | undefined {
    if (paths.version === 2) return this.poll(oom);
    const memory = paths.dirs.get('memory');
    return memory === undefined ? undefined : this.register(memory, oom);
  }

  private register(memoryDir: string, oom: () => void): StopWatch {
    const eventfd = this.eventfds.open(oom);
    try {
      // The kernel keeps its own hold on memory.oom_control once registered.
      const control = openSync(join(memoryDir, 'memory.oom_control'), 'r');
      try {
        writeFileSync(join(memoryDir, 'cgroup.event_control'), `${eventfd.fd} ${control}`);
      } finally {
        closeSync(control);
      }
    } catch (err) {
      eventfd.close();
      throw err;
    }
    return () => eventfd.close();
  }

  private poll(oom: () => void): StopWatch {
    this.polled.add(oom);
    this.timer ??= setInterval(() => this.polled.forEach((check) => check()), V2_POLL_MS).unref();
    return () => {
      this.polled.delete(oom);
      if (this.polled.size > 0 || !this.timer) return;
      clearInterval(this.timer);
      this.timer = undefined;
    };
  }
}
