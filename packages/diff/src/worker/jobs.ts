/** The work the Diff service does, as plain-data jobs that can cross a worker boundary. */
import { BoxdError, CancelledError, Code, errorCode } from '@boxd/api';
import { applyLayer, type AppliedLayer, type ApplyJob } from '../apply/apply-layer.js';
import type { DiffConfig } from '../config.js';
import type { ContentStore } from '../content/store.js';
import { createDiff, type CreatedLayer, type DiffJob } from '../diff/create-diff.js';

export interface JobScope {
  namespace?: string;
  lease?: string;
}

export type Job = { kind: 'apply'; job: ApplyJob; scope: JobScope } | { kind: 'diff'; job: DiffJob; scope: JobScope };
export type JobResult = AppliedLayer | CreatedLayer;

/** An error as it crosses a thread boundary: its status code and message. */
export interface JobError {
  code: number;
  message: string;
}

export interface JobEnvironment {
  config: DiffConfig;
  content: ContentStore;
  warn(details: Record<string, unknown>, message: string): void;
}

export function runJob(job: Job, env: JobEnvironment, signal: AbortSignal): Promise<JobResult> {
  const scope = { ...job.scope, signal };
  if (job.kind === 'apply') return applyLayer(job.job, { config: env.config, content: env.content, scope, warn: env.warn });
  return createDiff(job.job, { config: env.config, content: env.content, scope });
}

export function toJobError(err: unknown): JobError {
  const message = err instanceof Error ? err.message : String(err);
  if ((err as { name?: string })?.name === 'AbortError') return { code: Code.CANCELLED, message: 'context canceled' };
  return { code: errorCode(err), message };
}

export function fromJobError(err: JobError): BoxdError {
  if (err.code === Code.CANCELLED) return new CancelledError(err.message);
  return new BoxdError(err.code as Code, err.message);
}
