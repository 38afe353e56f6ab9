/** Namespaces, images, containers and leases: forwarded to the metadata plugin, events published here. */
import { containers, events, images, leases, namespaces, namespaceOf, type CallContext, type ServiceDefinition, type ServiceImplementation } from '@boxd/api';
import { forwardService } from '../forward.js';
import { passthroughDefinition, passthroughService } from '../passthrough.js';
import type { PluginEndpoint } from '../endpoint.js';
import type { EventPublisher } from '../events.js';

type Hooks<S extends ServiceDefinition> = Partial<Record<keyof S['methods'], (req: never, res: never, ctx: CallContext) => void>>;

/** Relay to the metadata plugin: bytes passed through on ttrpc, decoded messages otherwise. */
function relay<S extends ServiceDefinition>(def: S, endpoint: () => PluginEndpoint, after: Hooks<S> = {}, hooksWanted?: () => boolean) {
  if (endpoint().transport === 'ttrpc') return { definition: passthroughDefinition(def), implementation: passthroughService(def, endpoint, after, hooksWanted) };
  return { definition: def, implementation: forwardService(def, () => endpoint().client(def), after) as ServiceImplementation<S> };
}

/** `relay` with `before` called as each call of `method` comes in. */
function announced<S extends ServiceDefinition>(service: ReturnType<typeof relay<S>>, method: keyof S['methods'] & string, before: () => void) {
  const impl = service.implementation as Record<string, (...args: unknown[]) => unknown>;
  const call = impl[method]!;
  return { ...service, implementation: { ...impl, [method]: (...args: unknown[]) => (before(), call(...args)) } };
}

/**
 * `leaseCreating`: a lease is how clients begin an image or container
 * operation (ctr import, pull, run), and content is read or written next.
 */
export function metadataServices(endpoint: () => PluginEndpoint, publisher: EventPublisher, leaseCreating: () => void = () => undefined): Array<{ definition: ServiceDefinition; implementation: unknown }> {
  const ns = (ctx: CallContext) => namespaceOf(ctx) ?? '';
  const wanted = () => publisher.wanted;
  return [
    relay(namespaces.NamespacesService, endpoint, {
      Create: (_req: unknown, res: namespaces.CreateNamespaceResponse) =>
        publisher.publish(res.namespace?.name ?? '', '/namespaces/create', events.NamespaceCreate, { name: res.namespace?.name, labels: res.namespace?.labels }),
      Update: (_req: unknown, res: namespaces.UpdateNamespaceResponse) =>
        publisher.publish(res.namespace?.name ?? '', '/namespaces/update', events.NamespaceUpdate, { name: res.namespace?.name, labels: res.namespace?.labels }),
      Delete: (req: namespaces.DeleteNamespaceRequest) => publisher.publish(req.name, '/namespaces/delete', events.NamespaceDelete, { name: req.name }),
    }, wanted),
    relay(images.ImagesService, endpoint, {
      Create: (_req: unknown, res: images.CreateImageResponse, ctx: CallContext) =>
        publisher.publish(ns(ctx), '/images/create', images.ImageCreate, { name: res.image?.name, labels: res.image?.labels }),
      Update: (_req: unknown, res: images.UpdateImageResponse, ctx: CallContext) =>
        publisher.publish(ns(ctx), '/images/update', images.ImageUpdate, { name: res.image?.name, labels: res.image?.labels }),
      Delete: (req: images.DeleteImageRequest, _res: unknown, ctx: CallContext) => publisher.publish(ns(ctx), '/images/delete', images.ImageDelete, { name: req.name }),
    }, wanted),
    relay(containers.ContainersService, endpoint, {
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
    }, wanted),
    announced(relay(leases.LeasesService, endpoint), 'Create', leaseCreating),
  ];
}
