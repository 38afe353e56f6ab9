/** Namespaces, images, containers and leases: forwarded to the metadata plugin, events published here. */
import { containers, events, images, leases, namespaces, namespaceOf, type CallContext, type ServiceClient, type ServiceDefinition } from '@boxd/api';
import { forwardService } from '../forward.js';
import type { EventPublisher } from '../events.js';

type Client = <S extends ServiceDefinition>(def: S) => ServiceClient<S>;

export function metadataServices(client: Client, publisher: EventPublisher): Array<{ definition: ServiceDefinition; implementation: unknown }> {
  const ns = (ctx: CallContext) => namespaceOf(ctx) ?? '';
  return [
    {
      definition: namespaces.NamespacesService,
      implementation: forwardService(namespaces.NamespacesService, () => client(namespaces.NamespacesService), {
        Create: (_req: unknown, res: namespaces.CreateNamespaceResponse) =>
          publisher.publish(res.namespace?.name ?? '', '/namespaces/create', events.NamespaceCreate, { name: res.namespace?.name, labels: res.namespace?.labels }),
        Update: (_req: unknown, res: namespaces.UpdateNamespaceResponse) =>
          publisher.publish(res.namespace?.name ?? '', '/namespaces/update', events.NamespaceUpdate, { name: res.namespace?.name, labels: res.namespace?.labels }),
        Delete: (req: namespaces.DeleteNamespaceRequest) => publisher.publish(req.name, '/namespaces/delete', events.NamespaceDelete, { name: req.name }),
      }),
    },
    {
      definition: images.ImagesService,
      implementation: forwardService(images.ImagesService, () => client(images.ImagesService), {
        Create: (_req: unknown, res: images.CreateImageResponse, ctx: CallContext) =>
          publisher.publish(ns(ctx), '/images/create', images.ImageCreate, { name: res.image?.name, labels: res.image?.labels }),
        Update: (_req: unknown, res: images.UpdateImageResponse, ctx: CallContext) =>
          publisher.publish(ns(ctx), '/images/update', images.ImageUpdate, { name: res.image?.name, labels: res.image?.labels }),
        Delete: (req: images.DeleteImageRequest, _res: unknown, ctx: CallContext) => publisher.publish(ns(ctx), '/images/delete', images.ImageDelete, { name: req.name }),
      }),
    },
    {
      definition: containers.ContainersService,
      implementation: forwardService(containers.ContainersService, () => client(containers.ContainersService), {
        Create: (_req: unknown, res: containers.CreateContainerResponse, ctx: CallContext) =>
          publisher.publish(ns(ctx), '/containers/create', events.ContainerCreate, {
            id: res.container?.id,
            image: res.container?.image,
            runtime: { name: res.container?.runtime?.name, options: res.container?.runtime?.options },
          }),
        Update: (_req: unknown, res: containers.UpdateContainerResponse, ctx: CallContext) =>
          publisher.publish(ns(ctx), '/containers/update', events.ContainerUpdate, {
            id: res.container?.id,
            image: res.container?.image,
            labels: res.container?.labels,
            snapshotKey: res.container?.snapshotKey,
          }),
        Delete: (req: containers.DeleteContainerRequest, _res: unknown, ctx: CallContext) => publisher.publish(ns(ctx), '/containers/delete', events.ContainerDelete, { id: req.id }),
      }),
    },
    { definition: leases.LeasesService, implementation: forwardService(leases.LeasesService, () => client(leases.LeasesService)) },
  ];
}
