/**
 * The plugins the core runs or reaches: for each one its socket, its
 * supervisor (exec mode, started at boot or on demand) or in-process
 * instance, and typed clients.
 */
import { realpathSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'smol-toml';
import type { Logger } from 'pino';
import { FailedPreconditionError, NotFoundError, type ServiceClient, type ServiceDefinition } from '@boxd/api';
import { startPlugin, type PluginSpec, type RunningPlugin } from '@boxd/plugin-kit';
import { findExecutable } from './executables.js';
import type { CoreConfig, PluginConfig, PluginKind } from './config.js';
import { ReadCache } from './read-cache.js';
import { PluginEndpoint } from './endpoint.js';
import { stopOrphan, Supervisor, type SupervisedSpec } from './supervisor.js';
import { OnDemand } from './on-demand.js';
import { ActivationSocket } from './activation-socket.js';
import type { PluginStatus } from './services/introspection.js';

/** Stop order is the reverse: metadata (which calls the others) first. */
const START_ORDER: PluginKind[] = ['content', 'events', 'snapshot', 'diff', 'metadata'];

/**
 * The plugins each kind calls by their own sockets (the config it is given
 * says where). `bulk`: layer bytes flow there, so a demand caller dials the
 * callee's process directly and holds it while it runs; other calls (GC
 * sweeps) go through the callee's activation socket.
 */
const CALLS: Record<PluginKind, Array<{ kind: PluginKind; bulk: boolean }>> = {
  metadata: [
    { kind: 'content', bulk: false },
    { kind: 'snapshot', bulk: false },
  ],
  diff: [{ kind: 'content', bulk: true }],
  content: [],
  snapshot: [],
  events: [],
};

const TYPE_URI: Record<PluginKind, string> = {
  content: 'io.containerd.content.v1',
  events: 'io.containerd.event.v1',
  snapshot: 'io.containerd.snapshotter.v1',
  diff: 'io.containerd.differ.v1',
  metadata: 'io.containerd.metadata.v1',
};

interface Hosted {
  config: PluginConfig;
  /**
   * Where every client but the core reaches it. For a demand plugin that is
   * its activation socket, which starts it; the process itself listens on
   * `processAddress`, where the core's endpoint calls it.
   */
  address: string;
  processAddress: string;
  endpoint: PluginEndpoint;
  supervisor?: Supervisor;
  demand?: OnDemand;
  activation?: ActivationSocket;
  inProcess?: RunningPlugin;
  error?: string;
}

export class PluginHost {
  private readonly hosted = new Map<string, Hosted>();
  private readonly pluginDir: string;

  constructor(
    private readonly config: CoreConfig,
    private readonly logger: Logger,
    private readonly onRestart: (id: string) => void = () => undefined,
  ) {
    this.pluginDir = join(config.state, 'plugins');
    for (const p of config.plugins) {
      if (p.disabled) continue;
      const address = p.address ?? join(this.pluginDir, `${p.id}.sock`);
      const onDemand = isDemand(p);
      const processAddress = onDemand ? join(this.pluginDir, `${p.id}.proc.sock`) : address;
      const gate = onDemand ? { acquire: () => this.demandOf(p.id).acquire() } : undefined;
      const endpoint = new PluginEndpoint(p.id, processAddress, p.address ? p.transport : 'ttrpc', gate);
      if (p.type === 'metadata') endpoint.cacheReads(new ReadCache());
      this.hosted.set(p.id, { config: p, address, processAddress, endpoint });
    }
  }

  private demandOf(id: string): OnDemand {
    const demand = this.hosted.get(id)?.demand;
    if (!demand) throw new FailedPreconditionError(`plugin ${id} is not started`);
    return demand;
  }

  private ordered(): Hosted[] {
    return [...this.hosted.values()].sort((a, b) => START_ORDER.indexOf(a.config.type) - START_ORDER.indexOf(b.config.type));
  }

  private callees(p: PluginConfig): Hosted[] {
    return [...this.hosted.values()].filter((h) => CALLS[p.type].some((c) => c.kind === h.config.type));
  }

  /** Demand plugins a demand caller holds while it runs: its bulk callees. */
  private heldCallees(p: PluginConfig): Hosted[] {
    if (!isDemand(p)) return [];
    return this.callees(p).filter((h) => isDemand(h.config) && CALLS[p.type].some((c) => c.kind === h.config.type && c.bulk));
  }

  /** Where a plugin reaches one it calls: the process of one it holds, otherwise the callee's address. */
  private calleeAddress(caller: PluginConfig, callee: Hosted): string {
    return this.heldCallees(caller).includes(callee) ? callee.processAddress : callee.address;
  }

  /** The config a plugin gets: its own table plus the sockets of the plugins it talks to. */
  private pluginConfig(p: PluginConfig): Record<string, unknown> {
    const out: Record<string, unknown> = { ...p.config };
    const contentPlugin = this.byKind('content');
    if (CALLS[p.type].some((c) => c.kind === 'content') && contentPlugin) {
      out.content_address ??= this.calleeAddress(p, contentPlugin);
      out.content_transport ??= contentPlugin.endpoint.transport;
    }
    if (p.type === 'metadata') {
      const snapshotters: Record<string, unknown> = { ...(out.snapshotters as Record<string, unknown> | undefined) };
      for (const h of this.hosted.values()) {
        if (h.config.type === 'snapshot') snapshotters[h.config.id] ??= { address: this.calleeAddress(p, h), transport: h.endpoint.transport };
      }
      out.snapshotters = snapshotters;
      // A collection at each start would start every demand backend to list it. Whatever an
      // interrupted collection left behind is swept by the next one (after the next deletion).
      if (this.callees(p).some((h) => isDemand(h.config))) out.gc_startup_delay_ms ??= -1;
    }
    return out;
  }

  private byKind(kind: PluginKind): Hosted | undefined {
    return [...this.hosted.values()].find((h) => h.config.type === kind);
  }

  async startAll(): Promise<void> {
    await mkdir(this.pluginDir, { recursive: true, mode: 0o700 });
    const exec = [...this.hosted.values()].filter((h) => !h.config.address && !h.config.inProcess);
    await Promise.all(exec.map((h) => stopOrphan(this.pidFile(h.config.id), this.logger)));
    // Every process is set up before any starts, so a demand plugin finds those it holds.
    for (const h of exec) await this.failing(h, async () => this.prepare(h, await this.supervisedSpec(h.config)));
    // All at once: plugins dial each other lazily, so none waits for another to be up.
    const results = await Promise.allSettled(this.ordered().map((h) => this.failing(h, () => this.start(h))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async failing(h: Hosted, step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      h.error = (err as Error).message;
      throw new FailedPreconditionError(`plugin ${h.config.id} failed to start: ${h.error}`, { cause: err });
    }
  }

  private pidFile(id: string): string {
    return join(this.pluginDir, `${id}.pid`);
  }

  private async supervisedSpec(p: PluginConfig): Promise<SupervisedSpec> {
    const configFile = join(this.pluginDir, `${p.id}.toml`);
    await writeFile(configFile, stringify(this.pluginConfig(p)), { mode: 0o600 });
    const [bin, ...args] = p.exec ?? [];
    const root = join(this.config.root, p.id);
    const processAddress = this.hosted.get(p.id)!.processAddress;
    // Real path: a .js bin is run with this node, whatever its shebang says.
    const command = [realpathSync(findExecutable(bin, 'plugin binary')), ...args, '--address', processAddress, '--root', root, '--config', configFile];
    return { id: p.id, command, nodeArgs: p.nodeArgs, pidFile: this.pidFile(p.id) };
  }

  private prepare(h: Hosted, spec: SupervisedSpec): void {
    const p = h.config;
    if (isDemand(p)) {
      h.demand = new OnDemand(spec, { logger: this.logger }, { idleMs: p.idleExitMs, logger: this.logger, dependencies: () => this.heldCallees(p).map((c) => c.demand!) });
      h.supervisor = h.demand.supervisor;
      h.activation = new ActivationSocket(h.address, h.processAddress, { acquire: () => h.demand!.acquire(), pid: () => h.supervisor!.pid }, this.logger);
    } else {
      h.supervisor = new Supervisor(spec, { logger: this.logger });
    }
    const supervisor = h.supervisor;
    supervisor.on('exit', () => h.endpoint.reset());
    supervisor.on('ready', () => {
      if (supervisor.restarts > 0) this.onRestart(p.id);
    });
  }

  private async start(h: Hosted): Promise<void> {
    const p = h.config;
    if (p.address) return;
    if (p.inProcess) {
      if (!p.package) throw new NotFoundError(`plugin ${p.id}: in_process needs a package`);
      const spec = await loadSpec(p.package);
      const root = join(this.config.root, p.id);
      h.inProcess = await startPlugin(spec, { address: h.address, root, config: this.pluginConfig(p), logger: this.logger.child({ plugin: p.id }) });
      return;
    }
    if (h.activation) await h.activation.listen();
    else await h.supervisor!.start();
  }

  /** Stop in reverse start order: metadata first, content last. Nothing is started on demand meanwhile. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.hosted.values()].map((h) => h.activation?.close()));
    for (const h of this.ordered().reverse()) {
      const stopped = h.demand ? h.demand.close() : h.supervisor?.stop();
      await stopped?.catch((err) => this.logger.warn({ err, plugin: h.config.id }, 'plugin stop failed'));
      await h.inProcess?.stop().catch((err) => this.logger.warn({ err, plugin: h.config.id }, 'plugin stop failed'));
      await h.endpoint.close();
    }
  }

  client<S extends ServiceDefinition>(id: string, def: S): ServiceClient<S> {
    const h = this.hosted.get(id);
    if (!h) throw new NotFoundError(`plugin ${id} is not configured`);
    return h.endpoint.client(def);
  }

  /** The first enabled plugin of a kind (content, metadata, diff, events). */
  kindClient<S extends ServiceDefinition>(kind: PluginKind, def: S): ServiceClient<S> {
    const h = this.byKind(kind);
    if (!h) throw new FailedPreconditionError(`no ${kind} plugin is configured`);
    return h.endpoint.client(def);
  }

  kindEndpoint(kind: PluginKind): PluginEndpoint {
    const h = this.byKind(kind);
    if (!h) throw new FailedPreconditionError(`no ${kind} plugin is configured`);
    return h.endpoint;
  }

  has(kind: PluginKind): boolean {
    return this.byKind(kind) !== undefined;
  }

  /**
   * False for a demand plugin nothing holds (no call in flight, no open
   * stream): it may be stopped, and a call would have to start it.
   */
  inUse(kind: PluginKind): boolean {
    const demand = this.byKind(kind)?.demand;
    return demand ? demand.inUse : true;
  }

  /**
   * Starts a demand plugin ahead of a call that is about to come, so the call does not
   * wait for it. Nothing waits here; unused, it stops again after its idle time.
   */
  warm(id: string): void {
    this.hosted.get(id)?.demand?.acquire().then(
      (release) => release(),
      () => undefined,
    );
  }

  /** `warm` for the plugin of a kind, when there is one. */
  warmKind(kind: PluginKind): void {
    const h = this.byKind(kind);
    if (h) this.warm(h.config.id);
  }

  snapshotterIds(): string[] {
    return [...this.hosted.values()].filter((h) => h.config.type === 'snapshot').map((h) => h.config.id);
  }

  statuses(): PluginStatus[] {
    return [...this.hosted.values()].map((h) => ({
      type: TYPE_URI[h.config.type],
      id: h.config.id,
      exports: { address: h.address },
      error: h.error ?? this.processError(h),
    }));
  }

  /** A boot plugin should be running; a demand plugin is fine stopped unless its last start failed. */
  private processError(h: Hosted): string | undefined {
    if (h.demand) return h.demand.lastError;
    return h.supervisor && !h.supervisor.running ? 'plugin process is not running' : undefined;
  }
}

function isDemand(p: PluginConfig): boolean {
  return p.start === 'demand' && !p.address && !p.inProcess;
}

async function loadSpec(pkg: string): Promise<PluginSpec> {
  const mod = (await import(pkg)) as Record<string, unknown>;
  const spec = Object.values(mod).find((v): v is PluginSpec => typeof v === 'object' && v !== null && 'setup' in v && 'name' in v);
  if (!spec) throw new NotFoundError(`${pkg} exports no plugin spec`);
  return spec;
}
