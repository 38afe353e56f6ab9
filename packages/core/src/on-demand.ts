/**
 * A plugin process that runs only while it is used: the first call starts
 * it, every call and open stream holds it, and once nothing has held it for
 * the idle time it is stopped; the next call starts it again. Calls wait for
 * readiness; a start that fails, or a call during the backoff after a
 * crash, fails at once with Unavailable.
 */
import type { Logger } from 'pino';
import { UnavailableError } from '@boxd/api';
import { Supervisor, type SupervisedSpec, type SupervisorOptions } from './supervisor.js';

export type Release = () => void;

export interface OnDemandOptions {
  idleMs: number;
  logger: Logger;
  /**
   * Demand plugins this one calls by their own sockets: held from its start
   * until it stops, so none of them goes idle under it.
   */
  dependencies?: () => OnDemand[];
}

export class OnDemand {
  readonly supervisor: Supervisor;
  private holds = 0;
  private idleTimer?: NodeJS.Timeout;
  private startRun?: Promise<void>;
  private stopRun?: Promise<void>;
  private dependencyHolds?: Release[];
  private closed = false;
  /** Why the last start failed; cleared by the next one that succeeds. */
  lastError?: string;

  constructor(
    spec: SupervisedSpec,
    supervisorOptions: Omit<SupervisorOptions, 'restartWhen'>,
    private readonly options: OnDemandOptions,
  ) {
    // After a crash only a plugin still held is started again at once.
    this.supervisor = new Supervisor(spec, { ...supervisorOptions, restartWhen: () => this.restartAfterCrash() });
  }

  get id(): string {
    return this.supervisor.spec.id;
  }

  /** Something holds it: a call in flight, an open stream, a plugin that depends on it. */
  get inUse(): boolean {
    return this.holds > 0;
  }

  /** Holds the plugin running from now on; resolves once it is ready. Call the result to let go. */
  async acquire(): Promise<Release> {
    this.holds++;
    clearTimeout(this.idleTimer);
    try {
      await this.ready();
    } catch (err) {
      this.letGo();
      throw err;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.letGo();
    };
  }

  private letGo(): void {
    if (--this.holds > 0 || this.closed) return;
    this.idleTimer = setTimeout(() => this.retire(), this.options.idleMs).unref();
  }

  private async ready(): Promise<void> {
    while (this.stopRun) await this.stopRun;
    if (this.closed) throw new UnavailableError(`plugin ${this.id} is shutting down`);
    if (this.supervisor.ready) return;
    const backoff = this.supervisor.backoffLeftMs;
    if (backoff > 0 && !this.supervisor.starting) throw new UnavailableError(`plugin ${this.id} ${this.lastError ?? 'exited'}; next start in ${backoff} ms`);
    this.startRun ??= this.start().finally(() => (this.startRun = undefined));
    await this.startRun;
  }

  private async start(): Promise<void> {
    if (!this.supervisor.starting) this.options.logger.info({ plugin: this.id }, 'starting plugin on demand');
    try {
      await this.holdDependencies();
      await this.supervisor.start();
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
      if (!this.supervisor.running) this.releaseDependencies();
      throw new UnavailableError(`plugin ${this.id} failed to start: ${this.lastError}`, { cause: err });
    }
  }

  private async holdDependencies(): Promise<void> {
    if (this.dependencyHolds) return;
    const holds: Release[] = [];
    try {
      for (const dep of this.options.dependencies?.() ?? []) holds.push(await dep.acquire());
    } catch (err) {
      for (const release of holds) release();
      throw err;
    }
    this.dependencyHolds = holds;
  }

  private releaseDependencies(): void {
    for (const release of this.dependencyHolds ?? []) release();
    this.dependencyHolds = undefined;
  }

  private restartAfterCrash(): boolean {
    if (this.holds > 0 && !this.closed) return true;
    this.releaseDependencies();
    return false;
  }

  private retire(): void {
    if (this.holds > 0 || this.closed || this.stopRun || this.startRun || !this.supervisor.running) return;
    this.options.logger.info({ plugin: this.id, idleMs: this.options.idleMs }, 'plugin idle; stopping it');
    this.stopRun = this.stopProcess().finally(() => (this.stopRun = undefined));
  }

  private async stopProcess(): Promise<void> {
    await this.supervisor.stop();
    this.releaseDependencies();
  }

  /** Stops the plugin for good: later calls fail with Unavailable. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    await this.stopRun;
    await this.stopProcess();
  }
}
