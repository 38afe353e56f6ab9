/** containerd.services.diff.v1.Diff, handing each call to the job runner (or to a staged layer). */
import { boxdDiff, diff, leaseOf, namespaceOf, type CallContext, type ServiceImplementation } from '@boxd/api';
import type { Logger } from 'pino';
import { requireDescriptor, type ApplyJob } from './apply/apply-layer.js';
import type { DiffConfig } from './config.js';
import type { ContentStore } from './content/store.js';
import { parseDigest } from './digests.js';
import type { Mount } from './mounts.js';
import { claimStaged } from './staging/claim.js';
import type { Stager } from './staging/stager.js';
import type { JobRunner } from './worker/runner.js';
import type { JobScope } from './worker/jobs.js';

function plainMounts(mounts: { type: string; source: string; options: string[] }[]): Mount[] {
  return mounts.map((m) => ({ type: m.type, source: m.source, options: [...m.options] }));
}

function scopeOf(ctx: CallContext, config: DiffConfig): JobScope {
  return { namespace: namespaceOf(ctx) ?? config.contentNamespace, lease: leaseOf(ctx) };
}

export interface DiffServiceDeps {
  runner: JobRunner;
  config: DiffConfig;
  /** This thread's connection to the content store: it looks up blob files for the jobs. */
  content: ContentStore;
  stager: Stager;
  logger: Logger;
}

export function diffService({ runner, config, content, stager, logger }: DiffServiceDeps): ServiceImplementation<typeof diff.DiffService> {
  async function applyAsUsual(job: ApplyJob, ctx: CallContext) {
    const scope = scopeOf(ctx, config);
    const blobFile = await content.blobFile(requireDescriptor(job.diff).digest, { ...scope, signal: ctx.signal });
    return runner.run({ kind: 'apply', job: { ...job, blobFile }, scope }, ctx.signal);
  }

  return {
    async Apply(request, ctx) {
      const descriptor = request.diff;
      const job: ApplyJob = {
        diff: { mediaType: descriptor?.mediaType ?? '', digest: descriptor?.digest ?? '', size: descriptor?.size?.toString() ?? '0' },
        mounts: plainMounts(request.mounts),
        payloads: { ...request.payloads },
      };
      const applied = (await claimStaged(stager, job, config.streamProcessors, ctx.signal, logger)) ?? (await applyAsUsual(job, ctx));
      return { applied: { mediaType: applied.mediaType, digest: applied.digest, size: applied.size } };
    },
    async Diff(request, ctx) {
      const layer = await runner.run(
        {
          kind: 'diff',
          job: {
            left: plainMounts(request.left),
            right: plainMounts(request.right),
            mediaType: request.mediaType,
            ref: request.ref,
            labels: { ...request.labels },
          },
          scope: scopeOf(ctx, config),
        },
        ctx.signal,
      );
      return { diff: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size } };
    },
  };
}

/** boxd.diff.v1.Staging: layers unpacked ahead of their Apply. */
export function stagingService(stager: Stager, config: DiffConfig): ServiceImplementation<typeof boxdDiff.StagingService> {
  return {
    async Stage(request, ctx) {
      parseDigest(request.digest);
      return { staged: await stager.stage(request.digest, BigInt(request.size.toString()), scopeOf(ctx, config)) };
    },
  };
}
