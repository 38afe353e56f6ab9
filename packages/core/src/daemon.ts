/**
 * The core daemon: start (or reach) the plugins, then serve containerd's
 * API v1 on the gRPC socket by routing to them, and the ttrpc events
 * endpoint shims publish to on `<address>.ttrpc`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  boxdDiff,
  collectingWhenIdle,
  IdleCollector,
  boxdMetadata,
  content,
  diff,
  eventsService,
  eventsTtrpc,
  health,
  introspection,
  snapshots,
  tasks,
  containers,
  version,
  type ServiceClient,
  type ServiceDefinition,
  type ServiceImplementation,
} from '@boxd/api';
import { GrpcServer } from '@boxd/grpc';
import { TtrpcServer } from '@boxd/ttrpc';
import { HealthState } from '@boxd/plugin-kit';
import type { CoreConfig } from './config.js';
import { PluginHost } from './plugin-host.js';
import type { CoreMetrics } from './metrics.js';
import { EventPublisher } from './events.js';
import { instrument } from './instrument.js';
import { versionService } from './services/version.js';
import { introspectionService, type PluginStatus } from './services/introspection.js';
import { metadataServices } from './services/metadata.js';
import { contentService } from './services/content.js';
import { bytesRelay, passthroughDefinition } from './passthrough.js';
import { snapshotsService } from './services/snapshots.js';
import { diffService } from './services/diff.js';
import { UnpackAhead } from './services/unpack-ahead.js';
import { eventsPublicService, eventsShimService } from './services/events.js';
import { tasksService } from './services/tasks.js';
import { TaskManager } from './runtime/task-manager.js';
import { Checkpoints } from './runtime/checkpoints.js';

export interface Daemon {
  readonly config: CoreConfig;
  readonly host: PluginHost;
  /** Set when `[metrics] address` is. */
  readonly metrics?: CoreMetrics;
  stop(): Promise<void>;
}

interface Registered {
  definition: ServiceDefinition;
  implementation: ServiceImplementation<ServiceDefinition>;
  id: string;
}

function entry<S extends ServiceDefinition>(id: string, definition: S, implementation: ServiceImplementation<S>): Registered {
  return { id, definition, implementation: implementation as unknown as ServiceImplementation<ServiceDefinition> };
}

type Bus = ServiceClient<typeof eventsService.EventsService>;

/**
 * The events bus while something holds it. An event published while nothing
 * holds a demand-started bus reaches no one: every subscriber is an open
 * stream, which holds it, and the bus keeps no history. So such an event is
 * dropped instead of starting the bus for nothing.
 */
function heldBus(host: PluginHost): Bus | undefined {
  return host.has('events') && host.inUse('events') ? host.kindClient('events', eventsService.EventsService) : undefined;
}

/** The events bus as publishers see it: Publish and Forward go nowhere while nothing holds it. */
function publishingBus(host: PluginHost): () => Bus {
  return () => heldBus(host) ?? { ...host.kindClient('events', eventsService.EventsService), Publish: async () => ({}), Forward: async () => ({}) };
}

function publicServices(config: CoreConfig, host: PluginHost, bus: () => Bus, publisher: EventPublisher, healthState: HealthState, manager: TaskManager, logger: Logger): Registered[] {
  const meta = <S extends ServiceDefinition>(def: S) => host.kindClient('metadata', def);
  const store = () => host.kindClient('content', content.ContentService);
  const contentIndex = () => meta(boxdMetadata.ContentIndexService);
  const layerArrived = () => {
    host.warmKind('diff');
    // The snapshotter clients use unless told otherwise (ctr's and containerd's default).
    host.warm('overlayfs');
  };
  const unpackAhead = new UnpackAhead(() => host.kindClient('diff', boxdDiff.StagingService), store, logger, layerArrived);
  const contentApi = contentService(store, contentIndex, publisher, {
    writing: (head) => unpackAhead.writing(head),
    committed: (digest, size, namespace, head) => void unpackAhead.committed(digest, size, namespace, head),
  });
  // Content.Info and Update are ContentIndex's own messages: relayed as bytes where the plugin speaks ttrpc.
  const metaEndpoint = () => host.kindEndpoint('metadata');
  const contentEntry =
    metaEndpoint().transport === 'ttrpc'
      ? entry('content', passthroughDefinition(content.ContentService, ['Info', 'Update']), {
          ...contentApi,
          Info: bytesRelay(metaEndpoint, boxdMetadata.ContentIndexService.name, 'Info'),
          Update: bytesRelay(metaEndpoint, boxdMetadata.ContentIndexService.name, 'Update'),
        } as never)
      : entry('content', content.ContentService, contentApi);
  const services: Registered[] = [
    entry('version', version.VersionService, versionService()),
    entry('healthcheck', health.HealthService, healthState.implementation()),
    ...metadataServices(metaEndpoint, publisher, () => host.warmKind('content')).map((s) => entry(s.definition.name.split('.')[2], s.definition, s.implementation as never)),
    contentEntry,
    entry(
      'snapshots',
      snapshots.SnapshotsService,
      snapshotsService((name) => host.client(config.snapshotters[name] ?? name, snapshots.SnapshotsService), () => meta(boxdMetadata.SnapshotIndexService), publisher),
    ),
    entry('diff', diff.DiffService, diffService(() => host.kindClient('diff', diff.DiffService), store, contentIndex)),
    entry('events', eventsService.EventsService, eventsPublicService(bus)),
    entry('tasks', tasks.TasksService, tasksService(manager, () => meta(containers.ContainersService), new Checkpoints(contentApi))),
  ];
  return services;
}

/** One per process: any API call is work, and the heap is collected once calls stop for a while. */
const idle = new IdleCollector();

/** Health probes are not work: a probed daemon would collect after every probe. */
function collectedWhenIdle<T extends object>(s: Registered, impl: T): T {
  return s.definition === health.HealthService ? impl : (collectingWhenIdle(s.definition, impl as never, idle) as T);
}

function grpcStatuses(services: Registered[]): PluginStatus[] {
  return services.map((s) => ({ type: 'io.containerd.grpc.v1', id: s.id }));
}

export async function startDaemon(config: CoreConfig, logger: Logger): Promise<Daemon> {
  await mkdir(config.root, { recursive: true, mode: 0o711 });
  await mkdir(config.state, { recursive: true, mode: 0o711 });
  const metrics = config.metricsAddress ? new (await import('./metrics.js')).CoreMetrics() : undefined;
  const host = new PluginHost(config, logger, (id) => metrics?.pluginRestarted(id));
  const bus = publishingBus(host);
  const publisher = new EventPublisher(() => heldBus(host), logger);
  const healthState = new HealthState();
  try {
    await host.startAll();
  } catch (err) {
    await host.stopAll();
    throw err;
  }

  const manager = new TaskManager(
    {
      root: config.root,
      state: config.state,
      address: config.address,
      ttrpcAddress: `${config.address}.ttrpc`,
      publishBinary: process.argv[1] ?? process.execPath,
      shims: config.runtimes,
    },
    publisher,
    logger,
  );
  const services = publicServices(config, host, bus, publisher, healthState, manager, logger);
  const statuses = () => [...host.statuses(), ...grpcStatuses(services)];
  services.push(entry('introspection', introspection.IntrospectionService, introspectionService(statuses, join(config.root, 'uuid'))));

  const grpc = new GrpcServer();
  for (const s of services) grpc.addService(s.definition, collectedWhenIdle(s, metrics ? instrument(s.definition, s.implementation, metrics) : s.implementation));
  const ttrpc = new TtrpcServer({ logger });
  if (host.has('events')) ttrpc.addService(eventsTtrpc.EventsService, eventsShimService(bus));
  try {
    await grpc.listen(config.address, { gid: config.socketGid });
    await ttrpc.listen(`${config.address}.ttrpc`, { gid: config.socketGid });
    if (config.metricsAddress) await metrics?.listen(config.metricsAddress);
  } catch (err) {
    grpc.forceClose();
    await ttrpc.close({ graceful: false });
    await host.stopAll();
    throw err;
  }
  // Shims publish to the ttrpc endpoint, so reattach only once it is up.
  await manager.recover();
  healthState.serving(services.map((s) => s.definition.name));
  logger.info({ address: config.address, plugins: host.statuses().map((p) => p.id) }, 'boxd serving');
  // Starting up is a burst of work too: what loading and setup left is collected.
  idle.touch();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      healthState.close();
      await Promise.all([grpc.close(5000), ttrpc.close({ graceful: true, timeoutMs: 5000 })]);
      // Containers outlive the core: only our connections to their shims close.
      await manager.close();
      await host.stopAll();
      await metrics?.close();
      logger.info('boxd stopped');
    })());
  return { config, host, metrics, stop };
}
