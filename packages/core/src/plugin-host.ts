/**
 * The plugins the core runs or reaches: for each one its socket, its
 * supervisor (exec mode) or in-process instance, and typed clients.
 */
import { realpathSync } from 'node:fs';
import { findExecutable } from './executables.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'smol-toml';
import type { Logger } from 'pino';
import { FailedPreconditionError, NotFoundError, type ServiceClient, type ServiceDefinition } from '@boxd/api';
import { startPlugin, type PluginSpec, type RunningPlugin } from '@boxd/plugin-kit';
import type { CoreConfig, PluginConfig, PluginKind } from './config.js';
import { PluginEndpoint } from './endpoint.js';
import { Supervisor } from './supervisor.js';
import type { PluginStatus } from './services/introspection.js';

/** Stop order is the reverse: metadata (which calls the others) first. */
const START_ORDER: PluginKind[] = ['content', 'events', 'snapshot', 'diff', 'metadata'];

const TYPE_URI: Record<PluginKind, string> = {
  content: 'io.containerd.content.v1',
  events: 'io.containerd.event.v1',
  snapshot: 'io.containerd.snapshotter.v1',
  diff: 'io.containerd.differ.v1',
  metadata: 'io.containerd.metadata.v1',
};

interface Hosted {
  config: PluginConfig;
  endpoint: PluginEndpoint;
  supervisor?: Supervisor;
  inProcess?: RunningPlugin;
  error?: string;
}

export class PluginHost {
  private readonly hosted = new Map<string, Hosted>();

  constructor(
    private readonly config: CoreConfig,
    private readonly logger: Logger,
    private readonly onRestart: (id: string) => void = () => undefined,
  ) {
    for (const p of config.plugins) {
      if (p.disabled) continue;
      const address = p.address ?? join(config.state, 'plugins', `${p.id}.sock`);
      this.hosted.set(p.id, { config: p, endpoint: new PluginEndpoint(p.id, address, p.address ? p.transport : 'ttrpc') });
    }
  }

  private ordered(): Hosted[] {
    return [...this.hosted.values()].sort((a, b) => START_ORDER.indexOf(a.config.type) - START_ORDER.indexOf(b.config.type));
  }

  /** The config a plugin gets: its own table plus the sockets of the plugins it talks to. */
  private pluginConfig(p: PluginConfig): Record<string, unknown> {
    const out: Record<string, unknown> = { ...p.config };
    const contentPlugin = this.byKind('content');
    if ((p.type === 'metadata' || p.type === 'diff') && contentPlugin) {
      out.content_address ??= contentPlugin.endpoint.address;
      out.content_transport ??= contentPlugin.endpoint.transport;
    }
    if (p.type === 'metadata') {
      const snapshotters: Record<string, unknown> = { ...(out.snapshotters as Record<string, unknown> | undefined) };
      for (const h of this.hosted.values()) {
        if (h.config.type === 'snapshot') snapshotters[h.config.id] ??= { address: h.endpoint.address, transport: h.endpoint.transport };
      }
      out.snapshotters = snapshotters;
    }
    return out;
  }

  private byKind(kind: PluginKind): Hosted | undefined {
    return [...this.hosted.values()].find((h) => h.config.type === kind);
  }

  async startAll(): Promise<void> {
    await mkdir(join(this.config.state, 'plugins'), { recursive: true, mode: 0o700 });
    // All at once: plugins dial each other lazily, so none waits for another to be up.
    const results = await Promise.allSettled(
      this.ordered().map((h) =>
        this.start(h).catch((err: Error) => {
          h.error = err.message;
          throw new FailedPreconditionError(`plugin ${h.config.id} failed to start: ${h.error}`, { cause: err });
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async start(h: Hosted): Promise<void> {
    const p = h.config;
    if (p.address) return;
    const root = join(this.config.root, p.id);
    const config = this.pluginConfig(p);
    if (p.inProcess) {
      if (!p.package) throw new NotFoundError(`plugin ${p.id}: in_process needs a package`);
      const spec = await loadSpec(p.package);
      h.inProcess = await startPlugin(spec, { address: h.endpoint.address, root, config, logger: this.logger.child({ plugin: p.id }) });
      return;
    }
    const configFile = join(this.config.state, 'plugins', `${p.id}.toml`);
    await writeFile(configFile, stringify(config), { mode: 0o600 });
    const [bin, ...args] = p.exec ?? [];
    // Real path: a .js bin is run with this node, whatever its shebang says.
    const command = [realpathSync(findExecutable(bin, 'plugin binary')), ...args, '--address', h.endpoint.address, '--root', root, '--config', configFile];
    h.supervisor = new Supervisor({ id: p.id, command, pidFile: join(this.config.state, 'plugins', `${p.id}.pid`) }, { logger: this.logger });
    h.supervisor.on('exit', () => h.endpoint.reset());
    h.supervisor.on('ready', () => {
      if (h.supervisor!.restarts > 0) this.onRestart(p.id);
    });
    await h.supervisor.start();
  }

  /** Stop in reverse start order: metadata first, content last. */
  async stopAll(): Promise<void> {
    for (const h of this.ordered().reverse()) {
      await h.supervisor?.stop().catch((err) => this.logger.warn({ err, plugin: h.config.id }, 'plugin stop failed'));
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

  snapshotterIds(): string[] {
    return [...this.hosted.values()].filter((h) => h.config.type === 'snapshot').map((h) => h.config.id);
  }

  pids(): number[] {
    return [...this.hosted.values()].map((h) => h.supervisor?.pid).filter((p): p is number => p !== undefined);
  }

  statuses(): PluginStatus[] {
    return [...this.hosted.values()].map((h) => ({
      type: TYPE_URI[h.config.type],
      id: h.config.id,
      exports: { address: h.endpoint.address },
      error: h.error ?? (h.supervisor && !h.supervisor.running ? 'plugin process is not running' : undefined),
    }));
  }
}

async function loadSpec(pkg: string): Promise<PluginSpec> {
  const mod = (await import(pkg)) as Record<string, unknown>;
  const spec = Object.values(mod).find((v): v is PluginSpec => typeof v === 'object' && v !== null && 'setup' in v && 'name' in v);
  if (!spec) throw new NotFoundError(`${pkg} exports no plugin spec`);
  return spec;
}
