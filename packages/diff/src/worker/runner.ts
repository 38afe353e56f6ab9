/**
 * Runs jobs on a pool of worker threads (or inline when the pool size is 0).
 * Parallel Applies of independent layers then use every core.
 */
import { Worker } from 'node:worker_threads';
import { UnavailableError } from '@boxd/api';
import type { Logger } from 'pino';
import type { DiffConfig } from '../config.js';
import { connectContentStore, type ContentStore } from '../content/store.js';
import { fromJobError, runJob, type Job, type JobResult } from './jobs.js';
import type { FromWorker, ToWorker, WorkerData } from './worker-main.js';

export interface JobRunner {
  run<J extends Job>(job: J, signal: AbortSignal): Promise<JobResult<J>>;
  close(): Promise<void>;
}

export function inlineRunner(config: DiffConfig, logger: Logger): JobRunner {
  const content: ContentStore = connectContentStore(config.contentAddress, config.contentTransport);
  const warn = (details: Record<string, unknown>, message: string) => logger.warn(details, message);
  return {
    run: <J extends Job>(job: J, signal: AbortSignal) => runJob(job, { config, content, warn }, signal) as Promise<JobResult<J>>,
    close: async () => content.close(),
  };
}

interface Pending {
  resolve(result: JobResult): void;
  reject(err: Error): void;
}

class PooledWorker {
  readonly pending = new Map<number, Pending>();
  readonly worker: Worker;

  constructor(data: WorkerData, onExit: (self: PooledWorker, err?: Error) => void) {
    // A larger young generation: applies allocate many short-lived buffers and iterator results.
    this.worker = new Worker(new URL('./worker-main.js', import.meta.url), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 64 } });
    this.worker.on('message', (message: FromWorker) => {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      if (message.type === 'done') pending.resolve(message.result as JobResult);
      else pending.reject(fromJobError(message.error));
    });
    this.worker.on('error', (err) => onExit(this, err));
    this.worker.on('exit', (code) => onExit(this, code === 0 ? undefined : new Error(`worker exited with code ${code}`)));
  }

  failAll(err: Error): void {
    for (const pending of this.pending.values()) pending.reject(err);
    this.pending.clear();
  }
}

/** How long an idle worker is kept before its memory is given back. */
const IDLE_WORKER_MS = 30_000;

/**
 * Workers start on demand, up to `size`, and stop after a while idle: an
 * idle diff plugin costs one thread, a busy one uses every core.
 */
export function workerPoolRunner(config: DiffConfig, size: number, logger: Logger): JobRunner {
  const data: WorkerData = { config, logLevel: logger.level };
  let closing = false;
  let nextId = 1;
  const workers: PooledWorker[] = [];
  const idleTimers = new Map<PooledWorker, NodeJS.Timeout>();
  const onExit = (worker: PooledWorker, err?: Error) => {
    const index = workers.indexOf(worker);
    if (index < 0) return;
    workers.splice(index, 1);
    worker.failAll(new UnavailableError(`diff worker stopped: ${err?.message ?? 'exited'}`));
    if (!closing) logger.error({ err }, 'diff worker died; a new one starts with the next job');
  };
  const retireWhenIdle = (worker: PooledWorker) => {
    if (worker.pending.size > 0 || closing) return;
    clearTimeout(idleTimers.get(worker));
    const timer = setTimeout(() => {
      idleTimers.delete(worker);
      const index = workers.indexOf(worker);
      if (index < 0 || worker.pending.size > 0) return;
      workers.splice(index, 1);
      void worker.worker.terminate();
    }, IDLE_WORKER_MS);
    timer.unref();
    idleTimers.set(worker, timer);
  };
  const pick = (): PooledWorker => {
    const idle = workers.find((w) => w.pending.size === 0);
    if (idle) return idle;
    if (workers.length < size) {
      const fresh = new PooledWorker(data, onExit);
      workers.push(fresh);
      return fresh;
    }
    return workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  };

  return {
    run<J extends Job>(job: J, signal: AbortSignal): Promise<JobResult<J>> {
      if (closing) return Promise.reject(new UnavailableError('diff service is stopping'));
      const worker = pick();
      clearTimeout(idleTimers.get(worker));
      const id = nextId++;
      return new Promise<JobResult<J>>((resolve, reject) => {
        const cancel = () => worker.worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
        signal.addEventListener('abort', cancel, { once: true });
        const settle = () => {
          signal.removeEventListener('abort', cancel);
          retireWhenIdle(worker);
        };
        worker.pending.set(id, {
          resolve: (r) => (settle(), resolve(r as JobResult<J>)),
          reject: (e) => (settle(), reject(e)),
        });
        worker.worker.postMessage({ type: 'run', id, job } satisfies ToWorker);
      });
    },
    async close() {
      closing = true;
      for (const timer of idleTimers.values()) clearTimeout(timer);
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
