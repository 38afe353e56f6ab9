/** A worker thread running Apply and Diff jobs (fs calls are synchronous here, off the main thread). */
import { parentPort, workerData, threadId } from 'node:worker_threads';
import pino from 'pino';
import type { DiffConfig } from '../config.js';
import { connectContentStore } from '../content/store.js';
import { runJob, toJobError, type Job } from './jobs.js';

export interface WorkerData {
  config: DiffConfig;
  logLevel: string;
}

export type ToWorker = { type: 'run'; id: number; job: Job } | { type: 'cancel'; id: number };
export type FromWorker = { type: 'done'; id: number; result: unknown } | { type: 'failed'; id: number; error: { code: number; message: string } };

const { config, logLevel } = workerData as WorkerData;
const logger = pino({ name: 'diff', level: logLevel, base: { pid: process.pid, worker: threadId } }, pino.destination({ fd: 2, sync: false }));
const content = connectContentStore(config.contentAddress, config.contentTransport);
const running = new Map<number, AbortController>();
const port = parentPort!;

port.on('message', (message: ToWorker) => {
  if (message.type === 'cancel') {
    running.get(message.id)?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(message.id, controller);
  const warn = (details: Record<string, unknown>, text: string) => logger.warn(details, text);
  const started = performance.now();
  runJob(message.job, { config, content, warn }, controller.signal).then(
    (result) => {
      logger.debug({ job: message.job.kind, result, ms: Math.round(performance.now() - started) }, 'job done');
      port.postMessage({ type: 'done', id: message.id, result } satisfies FromWorker);
    },
    (err: unknown) => {
      const error = controller.signal.aborted ? { code: 1, message: 'context canceled' } : toJobError(err);
      logger.debug({ err, job: message.job.kind }, 'job failed');
      port.postMessage({ type: 'failed', id: message.id, error } satisfies FromWorker);
    },
  ).finally(() => running.delete(message.id));
});
