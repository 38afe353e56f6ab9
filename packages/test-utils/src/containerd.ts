import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ctr, type CtrOptions, type CtrResult } from './ctr.js';
import { spawnDaemon, type Daemon } from './daemon.js';
import { run } from './exec.js';
import { unmountBelow } from './mounts.js';
import { findProcesses, terminate } from './processes.js';
import { canConnect, GiveUpError, waitFor } from './wait.js';

export const CONTAINERD = '/usr/bin/containerd';

export type ProxyPluginType = 'snapshot' | 'content' | 'diff';

export interface StartContainerdOptions {
  /** Everything (config, root, state, sockets, log) lives below this directory. */
  dir: string;
  /**
   * `[proxy_plugins.NAME]` entries: gRPC plugins containerd loads from a socket. The
   * installed containerd 1.6 accepts snapshot and content only; 'diff' is refused.
   */
  proxyPlugins?: Record<string, { type: ProxyPluginType; address: string }>;
  /** Built-in plugin URIs to disable, e.g. io.containerd.content.v1.content. */
  disableBuiltins?: string[];
  /** Appended verbatim to the generated config.toml. */
  extraToml?: string;
  /** containerd log level (default "info"); the log is written to <dir>/containerd.log. */
  logLevel?: string;
  /** How long to wait for containerd to answer `ctr version` (default 20 s). */
  startTimeoutMs?: number;
}

export interface Containerd {
  /** gRPC socket path (what ctr -a takes). */
  address: string;
  ttrpcAddress: string;
  root: string;
  state: string;
  configPath: string;
  logPath: string;
  pid: number;
  /** Runs ctr against this containerd. */
  ctr(args: readonly string[], opts?: CtrOptions): Promise<CtrResult>;
  /** Stops containerd, its shims and their containers, and unmounts everything below dir. */
  stop(): Promise<void>;
}

/**
 * Plugins that cannot work on a plain test machine (or are not wanted in tests). CRI is
 * left out because it needs CNI config and pulls a sandbox image.
 */
export const ALWAYS_DISABLED = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
];

const tomlString = (s: string) => JSON.stringify(s);

export function containerdConfig(opts: StartContainerdOptions, paths: { root: string; state: string; address: string; ttrpcAddress: string }): string {
  const disabled = [...new Set([...ALWAYS_DISABLED, ...(opts.disableBuiltins ?? [])])];
  const lines = [
    'version = 2',
    `root = ${tomlString(paths.root)}`,
    `state = ${tomlString(paths.state)}`,
    // 0 = leave containerd's own oom_score_adj alone. The shim's start sets its daemon to
    // containerd's value + 1, which only raises it, so no CAP_SYS_RESOURCE is needed.
    'oom_score = 0',
    `disabled_plugins = [${disabled.map(tomlString).join(', ')}]`,
    '',
    '[grpc]',
    `  address = ${tomlString(paths.address)}`,
    '[ttrpc]',
    `  address = ${tomlString(paths.ttrpcAddress)}`,
    '[debug]',
    `  level = ${tomlString(opts.logLevel ?? 'info')}`,
  ];
  for (const [name, plugin] of Object.entries(opts.proxyPlugins ?? {})) {
    lines.push(`[proxy_plugins.${tomlString(name)}]`, `  type = ${tomlString(plugin.type)}`, `  address = ${tomlString(plugin.address)}`);
  }
  if (opts.extraToml) lines.push('', opts.extraToml);
  return lines.join('\n') + '\n';
}

/** Starts upstream containerd with a private root/state/socket below opts.dir. */
export async function startContainerd(opts: StartContainerdOptions): Promise<Containerd> {
  for (const [name, plugin] of Object.entries(opts.proxyPlugins ?? {})) {
    // containerd 1.6 only logs "unknown proxy plugin type" and carries on without it,
    // which would make a test silently use the built-in differ.
    if (plugin.type === 'diff') {
      throw new Error(`proxy plugin ${name}: containerd 1.6 cannot load diff proxy plugins (1.7.4+ can)`);
    }
  }
  const root = join(opts.dir, 'root');
  const state = join(opts.dir, 'state');
  const address = join(opts.dir, 'c.sock');
  const ttrpcAddress = `${address}.ttrpc`;
  if (Buffer.byteLength(ttrpcAddress) >= 108) {
    throw new Error(`socket path ${ttrpcAddress} is too long for a unix socket; use a shorter dir (tempDir())`);
  }
  const configPath = join(opts.dir, 'config.toml');
  const logPath = join(opts.dir, 'containerd.log');
  await mkdir(opts.dir, { recursive: true });
  await writeFile(configPath, containerdConfig(opts, { root, state, address, ttrpcAddress }));

  const daemon = spawnDaemon(CONTAINERD, ['--config', configPath], logPath);
  try {
    await waitForContainerd(daemon, address, logPath, opts.startTimeoutMs ?? 20_000);
  } catch (e) {
    await daemon.stop(0);
    throw e;
  }

  let stopping: Promise<void> | undefined;
  return {
    address,
    ttrpcAddress,
    root,
    state,
    configPath,
    logPath,
    pid: daemon.pid,
    ctr: (args, ctrOpts) => ctr(address, args, ctrOpts),
    stop: () => (stopping ??= stopContainerd(daemon, { dir: opts.dir, address, state })),
  };
}

async function waitForContainerd(daemon: Daemon, address: string, logPath: string, timeoutMs: number): Promise<void> {
  try {
    await waitFor(async () => {
      if (!daemon.running()) throw new GiveUpError(`containerd exited (${daemon.child.exitCode ?? daemon.child.signalCode})`);
      // ctr itself would sit out its whole dial timeout on a socket that is not there yet.
      if (!(await canConnect(address))) return false;
      const r = await ctr(address, ['version'], { timeoutMs: 5_000 });
      return r.code === 0;
    }, timeoutMs, 100);
  } catch (e) {
    const log = await readFile(logPath, 'utf8').catch(() => '');
    throw new Error(`containerd did not start: ${(e as Error).message}\n${log.split('\n').slice(-20).join('\n')}`);
  }
}

interface TaskBundle {
  namespace: string;
  id: string;
  path: string;
}

async function taskBundles(state: string): Promise<TaskBundle[]> {
  const base = join(state, 'io.containerd.runtime.v2.task');
  const bundles: TaskBundle[] = [];
  for (const namespace of await readdir(base).catch(() => [])) {
    for (const id of await readdir(join(base, namespace)).catch(() => [])) {
      bundles.push({ namespace, id, path: join(base, namespace, id) });
    }
  }
  return bundles;
}

/** The runc root each shim uses when the task's options name none. */
const DEFAULT_RUNC_ROOTS: Record<string, string> = { 'containerd-shim-boxd-v2': '/run/boxd/runc' };

/** runc's state root for a task: options.json may override the shim's default. */
async function runcRoot(bundle: TaskBundle): Promise<string> {
  const options = await readFile(join(bundle.path, 'options.json'), 'utf8').catch(() => '{}');
  const shim = await readFile(join(bundle.path, 'shim-binary-path'), 'utf8').catch(() => '');
  const root = (JSON.parse(options) as { root?: string }).root || DEFAULT_RUNC_ROOTS[basename(shim.trim())] || '/run/containerd/runc';
  return join(root, bundle.namespace);
}

/** Removes containers, shims and mounts this containerd left behind, then stops containerd. */
async function stopContainerd(
  daemon: Daemon,
  where: { dir: string; address: string; state: string },
): Promise<void> {
  // Shims are found by the containerd address they were started with, so other
  // containerd instances' shims on this machine are never touched.
  const shims = await findProcesses(
    (argv) => /containerd-shim/.test(argv[0] ?? '') && argv.includes(where.address),
  );
  const bundles = await taskBundles(where.state);
  for (const bundle of bundles) {
    await run('runc', ['--root', await runcRoot(bundle), 'delete', '--force', bundle.id], { timeoutMs: 10_000 });
  }
  await daemon.stop(5_000);
  for (const shim of shims) await terminate(shim.pid, 2_000);
  for (const bundle of bundles) {
    const shimAddress = await readFile(join(bundle.path, 'address'), 'utf8').catch(() => '');
    if (shimAddress.startsWith('unix://')) await rm(shimAddress.slice('unix://'.length), { force: true });
  }
  await unmountBelow(where.dir);
}
