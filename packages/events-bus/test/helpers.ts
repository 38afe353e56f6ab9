/** A real events-bus plugin on real sockets, and clients for it, for the tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { eventsService, eventsTtrpc, type CallOptions } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { startPlugin, createLogger, type RunningPlugin } from '@boxd/plugin-kit';
import { connect, createTtrpcClient, type TtrpcClient } from '@boxd/ttrpc';
import { eventsBusPlugin, type EventBus, type EventsBusInstance, type Envelope } from '../src/index.js';

export interface Harness {
  dir: string;
  grpcSocket: string;
  ttrpcSocket: string;
  plugin: RunningPlugin;
  bus: EventBus;
  grpc: ReturnType<typeof createGrpcClient<typeof eventsService.EventsService>>;
  stop(): Promise<void>;
}

export async function startHarness(config: Record<string, unknown> = {}): Promise<Harness> {
  // Short paths: unix socket paths must stay under 108 bytes.
  const dir = await mkdtemp('/tmp/bx-ev-');
  const grpcSocket = join(dir, 'grpc.sock');
  const ttrpcSocket = join(dir, 'ttrpc.sock');
  const plugin = await startPlugin(eventsBusPlugin, {
    address: ttrpcSocket,
    grpcAddress: grpcSocket,
    root: join(dir, 'root'),
    config,
    logger: createLogger('events-bus', process.env.BOXD_TEST_LOG ?? 'silent'),
    drainTimeoutMs: 500,
  });
  const grpc = createGrpcClient(eventsService.EventsService, grpcSocket);
  return {
    dir,
    grpcSocket,
    ttrpcSocket,
    plugin,
    bus: (plugin.instance as EventsBusInstance).bus,
    grpc,
    async stop() {
      grpc.close();
      await plugin.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function ttrpcClients(socket: string): Promise<{
  conn: TtrpcClient;
  shim: ReturnType<typeof createTtrpcClient<typeof eventsTtrpc.EventsService>>;
  events: ReturnType<typeof createTtrpcClient<typeof eventsService.EventsService>>;
}> {
  const conn = await connect(socket);
  return {
    conn,
    shim: createTtrpcClient(eventsTtrpc.EventsService, conn),
    events: createTtrpcClient(eventsService.EventsService, conn),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const live = new Set<Collector>();

/** Cancels every collector still running and waits until the bus has let go of them all. */
export async function cancelCollectors(h: Harness): Promise<void> {
  await Promise.all([...live].map((c) => c.cancel()));
  await waitFor('every subscription to be removed', () => h.bus.stats.subscribers === 0);
}

/** A subscriber that pulls as fast as events come and records them. */
export class Collector {
  readonly received: Envelope[] = [];
  error: unknown;
  readonly done: Promise<void>;
  private readonly controller = new AbortController();

  constructor(stream: (signal: AbortSignal) => AsyncIterable<Envelope>) {
    live.add(this);
    this.done = (async () => {
      try {
        for await (const env of stream(this.controller.signal)) this.received.push(env);
      } catch (err) {
        // Our own cancel surfaces as CANCELLED from the client: not a failure.
        if (!this.controller.signal.aborted) this.error = err;
      } finally {
        live.delete(this);
      }
    })();
  }

  static grpc(h: Harness, filters: string[] = [], options: CallOptions = {}): Collector {
    return new Collector((signal) => h.grpc.Subscribe({ filters }, { ...options, signal }));
  }

  async waitForCount(n: number, timeoutMs = 5000): Promise<Envelope[]> {
    await waitFor(`${n} events (have ${this.received.length})`, () => this.received.length >= n || this.error !== undefined, timeoutMs);
    if (this.error !== undefined && this.received.length < n) throw this.error;
    return this.received;
  }

  topics(): string[] {
    return this.received.map((e) => e.topic);
  }

  cancel(): Promise<void> {
    this.controller.abort();
    return this.done;
  }
}

/** Subscribes and waits until the bus has registered the subscription. */
export async function subscribed(h: Harness, make: () => Collector): Promise<Collector> {
  const before = h.bus.stats.subscribers;
  const c = make();
  await waitFor('subscription to register', () => h.bus.stats.subscribers > before || c.error !== undefined);
  if (c.error !== undefined) throw c.error;
  return c;
}
