/**
 * Starting runc (or crun) and learning how it ended. In the daemon a runtime call is
 * vforked (native.ts) and its exit comes from the reaper, which waits for every child
 * Node did not spawn itself. The `delete` command runs no reaper, and some stdio a
 * vfork here does not express (streams, inherited fds): Node spawns those.
 */
import type { StdioOptions } from 'node:child_process';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { closeFd, exitCodeOf, pipe, spawnVforked, type ChildFd } from './native.js';
import type { Reaper } from './reaper.js';
import { spawnHelper } from './spawn.js';

export interface Launched {
  stdin?: Writable;
  stdout?: Readable;
  stderr?: Readable;
  /** Its exit code (128 + the signal's number when killed), once it exited and its output ended. */
  ended: Promise<number>;
}

export type Launcher = (file: string, args: readonly string[], stdio: StdioOptions) => Launched;

export const nodeLauncher: Launcher = (file, args, stdio) => {
  const child = spawnHelper(file, args, { stdio });
  const ended = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  return { stdin: child.stdin ?? undefined, stdout: child.stdout ?? undefined, stderr: child.stderr ?? undefined, ended };
};

/** The child's stdio as fds, and our ends of its pipes. */
interface StdioPlan {
  childFds: ChildFd[];
  /** Fds to close here once the child has its copies. */
  childEnds: number[];
  stdin?: number;
  stdout?: number;
  stderr?: number;
}

/** undefined when some entry is not 'pipe', 'ignore' or an fd of our own above 2. */
function planStdio(stdio: StdioOptions): StdioPlan | undefined {
  if (!Array.isArray(stdio) || stdio.length !== 3) return undefined;
  if (!stdio.every((s) => s === 'pipe' || s === 'ignore' || (typeof s === 'number' && s > 2))) return undefined;
  const plan: StdioPlan = { childFds: [], childEnds: [] };
  try {
    stdio.forEach((s, target) => {
      if (s === 'ignore') plan.childFds.push({ target, devNull: true });
      else if (typeof s === 'number') plan.childFds.push({ target, from: s });
      else {
        const { read, write } = pipe();
        const [ours, theirs] = target === 0 ? [write, read] : [read, write];
        plan.childFds.push({ target, from: theirs });
        plan.childEnds.push(theirs);
        plan[(['stdin', 'stdout', 'stderr'] as const)[target]!] = ours;
      }
    });
  } catch (err) {
    closePlan(plan);
    throw err;
  }
  return plan;
}

/** Every fd the plan opened, both ends. */
function closePlan(plan: StdioPlan): void {
  for (const fd of [...plan.childEnds, plan.stdin, plan.stdout, plan.stderr]) if (fd !== undefined) closeFd(fd);
}

const environment = () => Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);

export function reapedLauncher(reaper: Reaper): Launcher {
  return (file, args, stdio) => {
    const plan = planStdio(stdio);
    if (!plan) return nodeLauncher(file, args, stdio);
    let pid: number;
    try {
      pid = spawnVforked(file, args, environment(), plan.childFds);
    } catch (err) {
      closePlan(plan);
      return { ended: Promise.reject(err as Error) };
    }
    for (const fd of plan.childEnds) closeFd(fd);
    const exited = new Promise<number>((resolve) => reaper.watch(pid, (status) => resolve(exitCodeOf(status))));
    const stdin = plan.stdin === undefined ? undefined : new Socket({ fd: plan.stdin, readable: false, writable: true });
    const outputs = [plan.stdout, plan.stderr].map((fd) => (fd === undefined ? undefined : new Socket({ fd, readable: true, writable: false })));
    // A pipe that fails to read still closes; its error must not take the daemon down.
    const closed = outputs.filter((s) => s !== undefined).map((s) => new Promise((resolve) => s.on('error', () => undefined).once('close', resolve)));
    return { stdin, stdout: outputs[0], stderr: outputs[1], ended: Promise.all([exited, ...closed]).then(([code]) => code) };
  };
}
