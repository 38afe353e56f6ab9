/**
 * Starts a plugin as a child process, waits for its readiness line on fd 3,
 * and restarts it with exponential backoff when it dies unexpectedly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { UnavailableError } from '@boxd/api';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A plugin left running by a core that was killed still holds its socket:
 * stop it (it drains and exits on SIGTERM), and forget its pid file.
 */
export async function stopOrphan(pidFile: string, logger: Logger): Promise<void> {
  const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
  if (Number.isInteger(pid) && pid > 1 && alive(pid)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('--ready-fd')) {
      logger.info({ pid, pidFile }, 'stopping plugin left by a previous core');
      process.kill(pid, 'SIGTERM');
      for (let waited = 0; alive(pid) && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  }
  await unlink(pidFile).catch(() => undefined);
}

export interface SupervisedSpec {
  id: string;
  /** Where the child's pid is kept while it runs, so a restarted core can stop an orphan. */
  pidFile?: string;
  /** argv[0] is a JS file run with this node, or an executable. */
  command: string[];
  /** Options for the node that runs a JS command (V8 flags); not allowed for an executable. */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

export interface SupervisorOptions {
  logger: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A run this long resets the backoff. */
  stableAfterMs?: number;
  /**
   * Asked once the backoff after a crash has passed: start it again now?
   * (Default yes. A plugin started on demand says no while nothing uses it;
   * its next start is then left to the next call.)
   */
  restartWhen?: () => boolean;
}

export class Supervisor extends EventEmitter {
  private child?: ChildProcess;
  private readyChild?: ChildProcess;
  private startRun?: Promise<void>;
  /** Whether the plugin should be running: false once stop() was asked. */
  private wanted = false;
  private backoffMs: number;
  private startedAt = 0;
  private retryAt = 0;
  private restartTimer?: NodeJS.Timeout;
  restarts = 0;

  constructor(
    readonly spec: SupervisedSpec,
    private readonly options: SupervisorOptions,
  ) {
    super();
    this.backoffMs = options.minBackoffMs ?? 100;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && !exited(this.child);
  }

  /** Running and past its readiness line. */
  get ready(): boolean {
    return this.readyChild !== undefined && this.readyChild === this.child && this.running;
  }

  get starting(): boolean {
    return this.startRun !== undefined;
  }

  /** How long a start should still wait after a crash or a failed start (its backoff). */
  get backoffLeftMs(): number {
    return Math.max(0, this.retryAt - Date.now());
  }

  /** Start (once; concurrent callers share the start) and wait until the plugin says it is ready. */
  start(): Promise<void> {
    this.wanted = true;
    clearTimeout(this.restartTimer);
    if (this.ready) return Promise.resolve();
    this.startRun ??= this.spawnReady().finally(() => (this.startRun = undefined));
    return this.startRun;
  }

  private async spawnReady(): Promise<void> {
    const [cmd, ...args] = this.spec.command;
    const isScript = /\.(m?js|cjs)$/.test(cmd);
    const nodeArgs = this.spec.nodeArgs ?? [];
    if (!isScript && nodeArgs.length > 0) throw new UnavailableError(`plugin ${this.spec.id}: node_args need a JS plugin command, not ${cmd}`);
    const child = spawn(isScript ? process.execPath : cmd, isScript ? [...nodeArgs, cmd, ...args, '--ready-fd', '3'] : [...args, '--ready-fd', '3'], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      env: { ...process.env, ...this.spec.env },
      // Its own process group: a signal to the core's group must not stop
      // plugins behind the supervisor's back; the core stops them in order.
      detached: true,
    });
    this.child = child;
    this.startedAt = Date.now();
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    try {
      // Written and removed synchronously: the exit of a predecessor, reported
      // at any time, must never interleave with (and remove) its successor's.
      if (this.spec.pidFile && child.pid) writeFileSync(this.spec.pidFile, String(child.pid));
      await this.waitReady(child);
    } catch (err) {
      // A broken plugin is not started again at once (a stop() that interrupted the start is no failure).
      if (this.wanted) this.holdOff();
      if (!exited(child)) child.kill('SIGKILL');
      throw err;
    }
    this.readyChild = child;
    this.options.logger.info({ plugin: this.spec.id, pid: child.pid }, 'plugin ready');
    this.emit('ready');
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const pipe = child.stdio[3] as Readable;
    const timeoutMs = this.spec.readyTimeoutMs ?? 30_000;
    let text = '';
    const ready = new Promise<void>((resolve, reject) => {
      pipe.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('ready')) resolve();
      });
      pipe.on('end', () => reject(new UnavailableError(`plugin ${this.spec.id} exited before it was ready`)));
      pipe.on('error', reject);
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError(`plugin ${this.spec.id} not ready after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([ready, timeout]);
    } finally {
      clearTimeout(timer);
      pipe.destroy();
    }
  }

  /** Next start no sooner than the backoff; the backoff doubles up to its maximum. */
  private holdOff(): number {
    if (Date.now() - this.startedAt > (this.options.stableAfterMs ?? 30_000)) this.backoffMs = this.options.minBackoffMs ?? 100;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 10_000);
    this.retryAt = Date.now() + delay;
    return delay;
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    if (this.spec.pidFile) forgetPid(this.spec.pidFile, child.pid);
    this.emit('exit', { code, signal });
    // A start that fails reports it to its caller; only a crash of a ready plugin restarts here.
    if (!this.wanted || child !== this.readyChild) return;
    const log = this.options.logger;
    const delay = this.holdOff();
    log.warn({ plugin: this.spec.id, code, signal, backoffMs: delay }, 'plugin exited');
    this.restartTimer = setTimeout(() => {
      if (!(this.options.restartWhen?.() ?? true)) {
        log.info({ plugin: this.spec.id }, 'plugin not in use: its next call starts it');
        return;
      }
      log.info({ plugin: this.spec.id }, 'restarting plugin');
      this.restarts++;
      this.start().catch((err) => log.error({ plugin: this.spec.id, err }, 'plugin restart failed'));
    }, delay);
  }

  /** SIGTERM, then SIGKILL after the grace period. A later start() runs it again. */
  async stop(graceMs = 10_000): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (child && !exited(child)) {
      const exitedNow = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitedNow;
      clearTimeout(timer);
    }
    // A start it interrupted fails (the plugin exited before it was ready).
    await this.startRun?.catch(() => undefined);
  }
}

/** Removes the pid file if it still names `pid` (a restart may already have written its successor's). */
function forgetPid(pidFile: string, pid: number | undefined): void {
  try {
    if (Number(readFileSync(pidFile, 'utf8')) === pid) unlinkSync(pidFile);
  } catch {
    // already gone
  }
}

/** exitCode and signalCode both stay null until the child exits. */
function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}
