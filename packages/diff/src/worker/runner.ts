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
  run(job: Job, signal: AbortSignal): Promise<JobResult>;
  close(): Promise<void>;
}

export function inlineRunner(config: DiffConfig, logger: Logger): JobRunner {
  const content: ContentStore = connectContentStore(config.contentAddress, config.contentTransport);
  const warn = (details: Record<string, unknown>, message: string) => logger.warn(details, message);
  return {
    run: (job, signal) => runJob(job, { config, content, warn }, signal),
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

export function workerPoolRunner(config: DiffConfig, size: number, logger: Logger): JobRunner {
  const data: WorkerData = { config, logLevel: logger.level };
  let closing = false;
  let nextId = 1;
  const workers: PooledWorker[] = [];
  const onExit = (worker: PooledWorker, err?: Error) => {
    const index = workers.indexOf(worker);
    if (index < 0) return;
    worker.failAll(new UnavailableError(`diff worker stopped: ${err?.message ?? 'exited'}`));
    if (closing) return;
    logger.error({ err }, 'diff worker died; starting a new one');
    workers[index] = new PooledWorker(data, onExit);
  };
  for (let i = 0; i < size; i++) workers.push(new PooledWorker(data, onExit));

  return {
    run(job, signal) {
      if (closing) return Promise.reject(new UnavailableError('diff service is stopping'));
      const worker = workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
      const id = nextId++;
      return new Promise<JobResult>((resolve, reject) => {
        const cancel = () => worker.worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
        signal.addEventListener('abort', cancel, { once: true });
        const settle = () => signal.removeEventListener('abort', cancel);
        worker.pending.set(id, {
          resolve: (r) => (settle(), resolve(r)),
          reject: (e) => (settle(), reject(e)),
        });
        worker.worker.postMessage({ type: 'run', id, job } satisfies ToWorker);
      });
    },
    async close() {
      closing = true;
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
