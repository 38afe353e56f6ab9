/**
 * Starts a plugin as a child process, waits for its readiness line on fd 3,
 * and restarts it with exponential backoff when it dies unexpectedly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { readFile, writeFile } from 'node:fs/promises';
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
 * stop it (it drains and exits on SIGTERM) before starting a fresh one.
 */
async function stopOrphan(pidFile: string, logger: Logger): Promise<void> {
  const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('--ready-fd')) return;
  logger.info({ pid, pidFile }, 'stopping plugin left by a previous core');
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; alive(pid) && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

export interface SupervisedSpec {
  id: string;
  /** Where the child's pid is kept, so a restarted core can stop an orphan. */
  pidFile?: string;
  /** argv[0] is a JS file run with this node, or an executable. */
  command: string[];
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

export interface SupervisorOptions {
  logger: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A run this long resets the backoff. */
  stableAfterMs?: number;
}

export class Supervisor extends EventEmitter {
  private child?: ChildProcess;
  private stopping = false;
  private backoffMs: number;
  private startedAt = 0;
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
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Start and wait until the plugin says it is ready. */
  async start(): Promise<void> {
    if (this.spec.pidFile) await stopOrphan(this.spec.pidFile, this.options.logger);
    const [cmd, ...args] = this.spec.command;
    const isScript = /\.(m?js|cjs)$/.test(cmd);
    const child = spawn(isScript ? process.execPath : cmd, isScript ? [cmd, ...args, '--ready-fd', '3'] : [...args, '--ready-fd', '3'], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
      env: { ...process.env, ...this.spec.env },
      // Its own process group: a signal to the core's group must not stop
      // plugins behind the supervisor's back; the core stops them in order.
      detached: true,
    });
    this.child = child;
    this.startedAt = Date.now();
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    if (this.spec.pidFile && child.pid) await writeFile(this.spec.pidFile, String(child.pid));
    await this.waitReady(child);
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

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.emit('exit', { code, signal });
    if (this.stopping) return;
    const log = this.options.logger;
    log.warn({ plugin: this.spec.id, code, signal }, 'plugin exited; restarting');
    if (Date.now() - this.startedAt > (this.options.stableAfterMs ?? 30_000)) this.backoffMs = this.options.minBackoffMs ?? 100;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 10_000);
    this.restartTimer = setTimeout(() => {
      this.restarts++;
      this.start().catch((err) => {
        log.error({ plugin: this.spec.id, err }, 'plugin restart failed');
      });
    }, delay);
  }

  /** SIGTERM, then SIGKILL after the grace period. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
