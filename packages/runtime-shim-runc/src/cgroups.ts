/**
 * Container cgroup statistics, read straight from cgroupfs (no runc call), in
 * containerd's wire format: `io.containerd.cgroups.v1.Metrics` on cgroup v1 hosts and
 * `io.containerd.cgroups.v2.Metrics` on unified hosts. Counters stay decimal strings
 * from the kernel to the protobuf encoder, so 64-bit values are exact.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupsV1, cgroupsV2, type Init } from '@boxd/api';

export const V1_METRICS_TYPE = 'io.containerd.cgroups.v1.Metrics';
export const V2_METRICS_TYPE = 'io.containerd.cgroups.v2.Metrics';

type Counter = string;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function counter(path: string): Counter {
  const text = read(path);
  return text && /^\d+$/.test(text) ? text : '0';
}

/** "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
export function keyValues(path: string): Map<string, Counter> {
  const out = new Map<string, Counter>();
  for (const line of (read(path) ?? '').split('\n')) {
    const [key, value] = line.split(' ');
    if (key && value && /^\d+$/.test(value)) out.set(key, value);
  }
  return out;
}

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

interface Mount {
  dir: string;
  fstype: string;
  options: string[];
}

let cgroupMountsRead: Mount[] | undefined;

/**
 * The cgroup hierarchies, read once: they are mounted at boot, while the rest of the
 * mount table (a rootfs per container) makes reading it a cost on every Start.
 */
function cgroupMounts(): Mount[] {
  if (!cgroupMountsRead?.length) cgroupMountsRead = readCgroupMounts();
  return cgroupMountsRead;
}

function readCgroupMounts(): Mount[] {
  const mounts: Mount[] = [];
  for (const line of (read('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [fstype, , superOptions] = right.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    mounts.push({ dir: left.split(' ')[4]!, fstype, options: (superOptions ?? '').split(',') });
  }
  return mounts;
}

export interface CgroupPaths {
  version: 1 | 2;
  /** v1: directory per controller; v2: the one directory under key "". */
  dirs: Map<string, string>;
}

/** Where the cgroups of a process are, from /proc/<pid>/cgroup and our mount table. */
export function cgroupPathsOf(pid: number): CgroupPaths | undefined {
  const lines = read(`/proc/${pid}/cgroup`);
  if (!lines) return undefined;
  const mounts = cgroupMounts();
  const unified = mounts.find((m) => m.fstype === 'cgroup2' && m.dir === '/sys/fs/cgroup');
  const dirs = new Map<string, string>();
  if (unified) {
    const path = lines.split('\n').find((l) => l.startsWith('0::'))?.slice(3);
    if (path === undefined) return undefined;
    dirs.set('', join(unified.dir, path));
    return { version: 2, dirs };
  }
  for (const line of lines.split('\n')) {
    const [, controllers, path] = line.split(':');
    if (!controllers || path === undefined) continue;
    for (const controller of controllers.split(',')) {
      const mount = mounts.find((m) => m.fstype === 'cgroup' && m.options.includes(controller));
      if (mount) dirs.set(controller, join(mount.dir, path));
    }
  }
  return { version: 1, dirs };
}

/** How many times the kernel OOM-killed something in this cgroup. */
export function oomKills(paths: CgroupPaths): bigint {
  if (paths.version === 2) return BigInt(keyValues(join(paths.dirs.get('')!, 'memory.events')).get('oom_kill') ?? '0');
  const memory = paths.dirs.get('memory');
  return memory ? BigInt(keyValues(join(memory, 'memory.oom_control')).get('oom_kill') ?? '0') : 0n;
}

function memoryEntry(dir: string, prefix: string): Init<cgroupsV1.MemoryEntry> {
  return {
    limit: counter(join(dir, `${prefix}.limit_in_bytes`)),
    usage: counter(join(dir, `${prefix}.usage_in_bytes`)),
    max: counter(join(dir, `${prefix}.max_usage_in_bytes`)),
    failcnt: counter(join(dir, `${prefix}.failcnt`)),
  };
}

const V1_MEMORY_STAT_NAMES: Record<string, string> = {
  pgpgin: 'pgPgIn',
  pgpgout: 'pgPgOut',
  pgfault: 'pgFault',
  pgmajfault: 'pgMajFault',
  hierarchical_memsw_limit: 'hierarchicalSwapLimit',
  total_pgpgin: 'totalPgPgIn',
  total_pgpgout: 'totalPgPgOut',
  total_pgfault: 'totalPgFault',
  total_pgmajfault: 'totalPgMajFault',
};

function v1Memory(dir: string): Init<cgroupsV1.MemoryStat> {
  const stat: Record<string, Counter> = {};
  for (const [key, value] of keyValues(join(dir, 'memory.stat'))) stat[V1_MEMORY_STAT_NAMES[key] ?? camel(key)] = value;
  return {
    ...stat,
    usage: memoryEntry(dir, 'memory'),
    swap: memoryEntry(dir, 'memory.memsw'),
    kernel: memoryEntry(dir, 'memory.kmem'),
    kernelTcp: memoryEntry(dir, 'memory.kmem.tcp'),
  };
}

/** blkio files: "MAJ:MIN Op value" lines (a trailing "Total" line has no device). */
function blkioEntries(path: string): Init<cgroupsV1.BlkIOEntry>[] {
  const out: Init<cgroupsV1.BlkIOEntry>[] = [];
  for (const line of (read(path) ?? '').split('\n')) {
    const [device, op, value] = line.split(' ');
    const m = /^(\d+):(\d+)$/.exec(device ?? '');
    if (!m || !op || !value) continue;
    out.push({ op, device: '', major: m[1]!, minor: m[2]!, value });
  }
  return out;
}

function v1Blkio(dir: string): Init<cgroupsV1.BlkIOStat> {
  const pick = (name: string) => {
    const direct = blkioEntries(join(dir, `blkio.${name}`));
    return direct.length ? direct : blkioEntries(join(dir, `blkio.throttle.${name}`));
  };
  return {
    ioServiceBytesRecursive: pick('io_service_bytes_recursive'),
    ioServicedRecursive: pick('io_serviced_recursive'),
  };
}

// cpuacct.stat counts USER_HZ ticks (100 per second on Linux): 10 ms each.
const NANOS_PER_TICK = 10_000_000n;

function v1Cpu(cpuacct: string | undefined, cpu: string | undefined): Init<cgroupsV1.CPUStat> {
  const result: Init<cgroupsV1.CPUStat> = {};
  if (cpuacct) {
    const ticks = keyValues(join(cpuacct, 'cpuacct.stat'));
    result.usage = {
      total: counter(join(cpuacct, 'cpuacct.usage')),
      kernel: (BigInt(ticks.get('system') ?? '0') * NANOS_PER_TICK).toString(),
      user: (BigInt(ticks.get('user') ?? '0') * NANOS_PER_TICK).toString(),
      perCpu: (read(join(cpuacct, 'cpuacct.usage_percpu')) ?? '').split(/\s+/).filter((v) => /^\d+$/.test(v)),
    };
  }
  if (cpu) {
    const stat = keyValues(join(cpu, 'cpu.stat'));
    result.throttling = {
      periods: stat.get('nr_periods') ?? '0',
      throttledPeriods: stat.get('nr_throttled') ?? '0',
      throttledTime: stat.get('throttled_time') ?? '0',
    };
  }
  return result;
}

function pidsLimit(path: string): Counter {
  const text = read(path);
  return text && /^\d+$/.test(text) ? text : '0';
}

export function v1Metrics(paths: CgroupPaths): Init<cgroupsV1.Metrics> {
  const d = paths.dirs;
  const metrics: Init<cgroupsV1.Metrics> = {};
  const pids = d.get('pids');
  if (pids) metrics.pids = { current: counter(join(pids, 'pids.current')), limit: pidsLimit(join(pids, 'pids.max')) };
  metrics.cpu = v1Cpu(d.get('cpuacct'), d.get('cpu'));
  const memory = d.get('memory');
  if (memory) {
    metrics.memory = v1Memory(memory);
    const oom = keyValues(join(memory, 'memory.oom_control'));
    metrics.memoryOomControl = {
      oomKillDisable: oom.get('oom_kill_disable') ?? '0',
      underOom: oom.get('under_oom') ?? '0',
      oomKill: oom.get('oom_kill') ?? '0',
    };
  }
  const blkio = d.get('blkio');
  if (blkio) metrics.blkio = v1Blkio(blkio);
  return metrics;
}

function v2IoEntries(path: string): Init<cgroupsV2.IOEntry>[] {
  const out: Init<cgroupsV2.IOEntry>[] = [];
  for (const line of (read(path) ?? '').split('\n')) {
    const [device, ...pairs] = line.split(' ');
    const m = /^(\d+):(\d+)$/.exec(device ?? '');
    if (!m) continue;
    const entry: Record<string, string> = { major: m[1]!, minor: m[2]! };
    for (const pair of pairs) {
      const [k, v] = pair.split('=');
      if (k && v && ['rbytes', 'wbytes', 'rios', 'wios'].includes(k)) entry[k] = v;
    }
    out.push(entry);
  }
  return out;
}

export function v2Metrics(paths: CgroupPaths): Init<cgroupsV2.Metrics> {
  const dir = paths.dirs.get('')!;
  const memoryStat: Record<string, Counter> = {};
  for (const [key, value] of keyValues(join(dir, 'memory.stat'))) memoryStat[camel(key)] = value;
  const cpu = keyValues(join(dir, 'cpu.stat'));
  const events = keyValues(join(dir, 'memory.events'));
  return {
    pids: { current: counter(join(dir, 'pids.current')), limit: pidsLimit(join(dir, 'pids.max')) },
    cpu: Object.fromEntries([...cpu].map(([k, v]) => [camel(k), v])),
    memory: {
      ...memoryStat,
      usage: counter(join(dir, 'memory.current')),
      usageLimit: counter(join(dir, 'memory.max')),
      swapUsage: counter(join(dir, 'memory.swap.current')),
      swapLimit: counter(join(dir, 'memory.swap.max')),
    },
    memoryEvents: Object.fromEntries([...events].map(([k, v]) => [camel(k), v])),
    io: { usage: v2IoEntries(join(dir, 'io.stat')) },
  };
}

/** StatsResponse.stats for the cgroup(s) of pid. */
export function metricsAny(paths: CgroupPaths): { type_url: string; value: Uint8Array } {
  if (paths.version === 2) return { type_url: V2_METRICS_TYPE, value: cgroupsV2.Metrics.encode(v2Metrics(paths)) };
  return { type_url: V1_METRICS_TYPE, value: cgroupsV1.Metrics.encode(v1Metrics(paths)) };
}
