/**
 * Starting and stopping a plugin: open its stores, serve its services on
 * ttrpc (and gRPC when asked), signal readiness, and on SIGTERM stop
 * accepting, drain calls in flight, close the stores and exit 0.
 */
import { closeSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { collectingWhenIdle, health, IdleCollector, type ServiceDefinition, type ServiceImplementation } from '@boxd/api';
import type { GrpcServer } from '@boxd/grpc';
import { TtrpcServer } from '@boxd/ttrpc';
import { createLogger, type Logger } from './logger.js';
import { loadConfig, type PluginConfig } from './config.js';
import { parseFlags, type PluginFlags } from './flags.js';
import { HealthState } from './health.js';

export interface ServiceRegistration {
  definition: ServiceDefinition;
  implementation: ServiceImplementation<ServiceDefinition>;
}

export function service<S extends ServiceDefinition>(definition: S, implementation: ServiceImplementation<S>): ServiceRegistration {
  return { definition, implementation: implementation as unknown as ServiceImplementation<ServiceDefinition> };
}

export interface PluginContext {
  name: string;
  root: string;
  config: PluginConfig;
  logger: Logger;
}

export interface PluginInstance {
  services: ServiceRegistration[];
  /**
   * Called when the stop begins, before calls in flight drain: end the
   * streams that never end on their own (subscriptions), or the drain waits
   * out its whole timeout for them.
   */
  stopping?(): void;
  /** Close stores; called after calls in flight have drained. */
  close?(): Promise<void> | void;
}

export interface PluginSpec {
  /** Short name: the logger name and the config section, e.g. `content-store`. */
  name: string;
  setup(ctx: PluginContext): Promise<PluginInstance> | PluginInstance;
}

export interface StartOptions {
  address?: string;
  grpcAddress?: string;
  root: string;
  config?: PluginConfig;
  logger?: Logger;
  logLevel?: string;
  socketGid?: number;
  drainTimeoutMs?: number;
}

export interface RunningPlugin {
  readonly name: string;
  readonly address?: string;
  readonly grpcAddress?: string;
  readonly logger: Logger;
  readonly instance: PluginInstance;
  stop(): Promise<void>;
}

/** Start a plugin in this process (tests, embedding, the core's in_process mode). */
export async function startPlugin(spec: PluginSpec, options: StartOptions): Promise<RunningPlugin> {
  const logger = options.logger ?? createLogger(spec.name, options.logLevel);
  await mkdir(options.root, { recursive: true, mode: 0o700 });
  const instance = await spec.setup({ name: spec.name, root: options.root, config: options.config ?? {}, logger });
  const healthState = new HealthState();
  const healthService = service(health.HealthService, healthState.implementation());
  const listen = { gid: options.socketGid };

  let ttrpc: TtrpcServer | undefined;
  let grpc: GrpcServer | undefined;
  // Plugins idle most of their life: the heap a burst of calls left is collected after it.
  const idle = new IdleCollector();
  // Health probes are not work: a probed plugin would collect after every probe.
  const served = [...instance.services.map((s) => ({ definition: s.definition, implementation: collectingWhenIdle(s.definition, s.implementation, idle) })), healthService];
  try {
    if (options.address) {
      ttrpc = new TtrpcServer({ logger });
      for (const s of served) ttrpc.addService(s.definition, s.implementation);
      await ttrpc.listen(options.address, listen);
    }
    if (options.grpcAddress) {
      // Loaded only when asked for: a ttrpc-only plugin never pays for HTTP/2.
      const { GrpcServer } = await import('@boxd/grpc');
      grpc = new GrpcServer();
      for (const s of served) grpc.addService(s.definition, s.implementation);
      await grpc.listen(options.grpcAddress, listen);
    }
  } catch (err) {
    await ttrpc?.close({ graceful: false });
    grpc?.forceClose();
    await instance.close?.();
    throw err;
  }
  healthState.serving(served.map((s) => s.definition.name));
  // Starting up is a burst of work too: what loading and setup left is collected.
  idle.touch();
  logger.info({ address: options.address, grpcAddress: options.grpcAddress, services: served.map((s) => s.definition.name) }, 'serving');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      healthState.close();
      instance.stopping?.();
      const timeoutMs = options.drainTimeoutMs ?? 10_000;
      await Promise.all([ttrpc?.close({ graceful: true, timeoutMs }), grpc?.close(timeoutMs)]);
      await instance.close?.();
      logger.info('stopped');
    })());
  return { name: spec.name, address: options.address, grpcAddress: options.grpcAddress, logger, instance, stop };
}

function signalReady(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    writeSync(fd, 'ready\n');
    closeSync(fd);
  } catch {
    // The supervisor may have gone; readiness is also visible through Health.
  }
}

/** The `main` of a plugin binary: parse flags, start, stop on SIGTERM/SIGINT. */
export async function runPlugin(spec: PluginSpec, argv = process.argv.slice(2)): Promise<void> {
  let flags: PluginFlags;
  try {
    flags = parseFlags(argv, `boxd-${spec.name}`);
  } catch (err) {
    process.stderr.write(`boxd-${spec.name}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger(spec.name, flags.logLevel);
  let running: RunningPlugin;
  try {
    const config = await loadConfig(flags.config, spec.name);
    running = await startPlugin(spec, {
      address: flags.address || undefined,
      grpcAddress: flags.grpcAddress,
      root: flags.root,
      config,
      logger,
      socketGid: flags.socketGid,
    });
  } catch (err) {
    logger.fatal({ err }, 'failed to start');
    logger.flush?.();
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
    return;
  }
  signalReady(flags.readyFd);
  stopOnSignals(() => running.stop(), logger);
}

/** SIGTERM/SIGINT run `stop`, then the process exits 0 (1 if the stop failed). */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger): void {
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'stopping');
    stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
