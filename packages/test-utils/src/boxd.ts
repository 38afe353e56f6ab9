import { existsSync, realpathSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ctr, type CtrOptions, type CtrResult } from './ctr.js';
import { spawnDaemon, type Daemon } from './daemon.js';
import { unmountBelow } from './mounts.js';
import { waitFor } from './wait.js';
import { run } from './exec.js';

export interface StartBoxdOptions {
  dir: string;
  /** Config file text (TOML); the built-in default when absent. */
  config?: string;
  logLevel?: string;
  startTimeoutMs?: number;
}

export interface Boxd {
  address: string;
  root: string;
  state: string;
  logPath: string;
  readonly pid: number;
  ctr(args: readonly string[], opts?: CtrOptions): Promise<CtrResult>;
  /** SIGTERM: the core stops its plugins in order. */
  stop(): Promise<void>;
  /** kill -9 of the core alone (its plugins keep running until the next start). */
  kill9(): Promise<void>;
  /** Start the core again on the same root, state and address. */
  restart(): Promise<void>;
}

/**
 * The `boxd` launcher of this checkout, the file npm links as the bin: run as a program,
 * it starts node with the core's own flags (its #! line).
 */
export function boxdBin(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const built = join(here, '../../core/dist/bin.js');
  if (!existsSync(built)) throw new Error(`boxd is not built: ${built} missing (run npm run build)`);
  return realpathSync(join(here, '../../core/bin/boxd.js'));
}

/** Starts `boxd` on a fresh root/state under dir and waits until `ctr version` answers. */
export async function startBoxd(opts: StartBoxdOptions): Promise<Boxd> {
  const root = join(opts.dir, 'root');
  const state = join(opts.dir, 'state');
  const address = join(opts.dir, 'boxd.sock');
  const logPath = join(opts.dir, 'boxd.log');
  await mkdir(opts.dir, { recursive: true });
  const args = ['--root', root, '--state', state, '--address', address, '--log-level', opts.logLevel ?? 'info'];
  if (opts.config !== undefined) {
    const configPath = join(opts.dir, 'boxd.toml');
    await writeFile(configPath, opts.config);
    args.push('--config', configPath);
  }
  let daemon: Daemon;
  const launch = async () => {
    daemon = spawnDaemon(boxdBin(), args, logPath);
    await waitFor(
      async () => {
        if (!daemon.running()) throw new Error(`boxd exited while starting; see ${logPath}`);
        return (await ctr(address, ['version'], { timeoutMs: 5000 })).code === 0;
      },
      opts.startTimeoutMs ?? 60_000,
    );
  };
  await launch();
  return {
    address,
    root,
    state,
    logPath,
    get pid() {
      return daemon.pid;
    },
    ctr: (a, o) => ctr(address, a, o),
    stop: async () => {
      await daemon.stop(15_000);
      // Plugins left by a kill -9 run under this state dir: stop them too.
      await run('pkill', ['-TERM', '-f', `--address ${state}/`]);
      await unmountBelow(opts.dir);
    },
    kill9: async () => {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
    },
    restart: launch,
  };
}
