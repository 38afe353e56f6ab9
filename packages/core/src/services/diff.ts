/** The public Diff API: the diff plugin does the work; new layers are recorded in the namespace. */
import { boxdMetadata, content, diff, isAlreadyExists, type ServiceClient, type ServiceImplementation } from '@boxd/api';
import { forwardOptions, plainOptions } from '../forward.js';

type Differ = ServiceClient<typeof diff.DiffService>;
type Store = ServiceClient<typeof content.ContentService>;
type Index = ServiceClient<typeof boxdMetadata.ContentIndexService>;


export function diffService(differ: () => Differ, store: () => Store, index: () => Index): ServiceImplementation<typeof diff.DiffService> {
  return {
    async Apply(req, ctx) {
      // The layer must be visible in the caller's namespace.
      await index().Info({ digest: req.diff?.digest ?? '' }, forwardOptions(ctx));
      return differ().Apply(req, plainOptions(ctx));
    },
    async Diff(req, ctx) {
      const res = await differ().Diff(req, plainOptions(ctx));
      const digest = res.diff?.digest ?? '';
      const { info } = await store().Info({ digest }, plainOptions(ctx));
      await index()
        .Add({ digest, size: info?.size, labels: { ...info?.labels, ...req.labels } }, forwardOptions(ctx))
        .catch((err) => (isAlreadyExists(err) ? undefined : Promise.reject(err)));
      return res;
    },
  };
}
