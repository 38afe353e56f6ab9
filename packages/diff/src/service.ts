/** containerd.services.diff.v1.Diff, handing each call to the job runner. */
import { diff, leaseOf, namespaceOf, type CallContext, type ServiceImplementation } from '@boxd/api';
import type { DiffConfig } from './config.js';
import type { Mount } from './mounts.js';
import type { JobRunner } from './worker/runner.js';
import type { JobScope } from './worker/jobs.js';

function plainMounts(mounts: { type: string; source: string; options: string[] }[]): Mount[] {
  return mounts.map((m) => ({ type: m.type, source: m.source, options: [...m.options] }));
}

function scopeOf(ctx: CallContext, config: DiffConfig): JobScope {
  return { namespace: namespaceOf(ctx) ?? config.contentNamespace, lease: leaseOf(ctx) };
}

export function diffService(runner: JobRunner, config: DiffConfig): ServiceImplementation<typeof diff.DiffService> {
  return {
    async Apply(request, ctx) {
      const descriptor = request.diff;
      const applied = await runner.run(
        {
          kind: 'apply',
          job: {
            diff: { mediaType: descriptor?.mediaType ?? '', digest: descriptor?.digest ?? '', size: descriptor?.size?.toString() ?? '0' },
            mounts: plainMounts(request.mounts),
            payloads: { ...request.payloads },
          },
          scope: scopeOf(ctx, config),
        },
        ctx.signal,
      );
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
