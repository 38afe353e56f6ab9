/** The work the Diff service does, as plain-data jobs that can cross a worker boundary. */
import { BoxdError, CancelledError, Code, errorCode } from '@boxd/api';
import { applyLayer, type AppliedLayer, type ApplyJob } from '../apply/apply-layer.js';
import type { DiffConfig } from '../config.js';
import type { ContentStore } from '../content/store.js';
import { createDiff, type CreatedLayer, type DiffJob } from '../diff/create-diff.js';
import { stageLayer, type StagedLayer, type StageJob } from '../staging/stage-layer.js';

export interface JobScope {
  namespace?: string;
  lease?: string;
}

interface JobKinds {
  apply: { job: ApplyJob; result: AppliedLayer };
  diff: { job: DiffJob; result: CreatedLayer };
  stage: { job: StageJob; result: StagedLayer };
}

export type Job = { [K in keyof JobKinds]: { kind: K; job: JobKinds[K]['job']; scope: JobScope } }[keyof JobKinds];
export type JobResult<J extends Job = Job> = JobKinds[J['kind']]['result'];

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
  switch (job.kind) {
    case 'apply':
      return applyLayer(job.job, { config: env.config, content: env.content, scope, warn: env.warn });
    case 'diff':
      return createDiff(job.job, { config: env.config, content: env.content, scope });
    case 'stage':
      return stageLayer(job.job, { config: env.config, content: env.content, scope, warn: env.warn });
  }
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
