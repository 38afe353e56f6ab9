/**
 * The OCI runtime command line (runc, or crun by `binary_name`), with upstream's global
 * flags. runc writes its errors to `--log`, so a failure's message is the last error
 * line that call appended to `<bundle>/log.json`.
 */
import { type StdioOptions } from 'node:child_process';
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeLauncher, type Launcher } from './launch.js';
import { startThroughExecFifo } from './exec-fifo.js';
import { deleteStopped } from './stopped-delete.js';

export interface RuntimeConfig {
  /** Binary name or path: `runc` when empty. */
  binary: string;
  /** State root for this namespace, e.g. /run/boxd/runc/default. */
  root: string;
  systemdCgroup: boolean;
  criuPath: string;
}

export class RuntimeError extends Error {
  constructor(
    readonly operation: string,
    readonly detail: string,
  ) {
    super(`OCI runtime ${operation} failed: ${detail}`);
    this.name = 'RuntimeError';
  }
}

export interface RunOptions {
  stdio?: StdioOptions;
  input?: string;
}

interface Output {
  stdout: string;
}

/**
 * Not upstream's /run/containerd/runc: boxd and containerd on one machine would then
 * share runc's state, so a namespace and id used by both would fail to start on the
 * second, and one daemon's forced delete would remove the other's container.
 */
export const DEFAULT_RUNC_ROOT = '/run/boxd/runc';

export function runtimeConfig(
  namespace: string,
  options: { binaryName?: string; root?: string; systemdCgroup?: boolean; criuPath?: string } | undefined,
): RuntimeConfig {
  return {
    binary: options?.binaryName || 'runc',
    root: join(options?.root || DEFAULT_RUNC_ROOT, namespace),
    systemdCgroup: options?.systemdCgroup ?? false,
    criuPath: options?.criuPath ?? '',
  };
}

const LOG_TAIL_LIMIT = 64 * 1024;

function logSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export class Runtime {
  constructor(
    readonly config: RuntimeConfig,
    readonly bundle: string,
    private readonly launch: Launcher = nodeLauncher,
  ) {}

  get logPath(): string {
    return join(this.bundle, 'log.json');
  }

  private globalArgs(): string[] {
    const args = ['--root', this.config.root, '--log', this.logPath, '--log-format', 'json'];
    if (this.config.systemdCgroup) args.push('--systemd-cgroup');
    if (this.config.criuPath) args.push('--criu', this.config.criuPath);
    return args;
  }

  async run(operation: string, args: readonly string[], options: RunOptions = {}): Promise<Output> {
    const logStart = logSize(this.logPath);
    const child = this.launch(this.config.binary || 'runc', [...this.globalArgs(), ...args], options.stdio ?? ['pipe', 'pipe', 'pipe']);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => stdout.push(b));
    child.stderr?.on('data', (b: Buffer) => stderr.push(b));
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
    const code = await child.ended;
    if (code !== 0) {
      const detail = (await this.lastError(logStart)) || Buffer.concat(stderr).toString().trim() || `exit status ${code}`;
      throw new RuntimeError(operation, detail);
    }
    return { stdout: Buffer.concat(stdout).toString() };
  }

  private async lastError(from: number): Promise<string | undefined> {
    const file = await open(this.logPath, 'r').catch(() => undefined);
    if (!file) return undefined;
    try {
      const { size } = await file.stat();
      const start = Math.max(from, size - LOG_TAIL_LIMIT);
      const buf = Buffer.alloc(Math.max(0, size - start));
      await file.read(buf, 0, buf.length, start);
      let message: string | undefined;
      for (const line of buf.toString().split('\n')) {
        try {
          const entry = JSON.parse(line) as { level?: string; msg?: string };
          if (entry.level === 'error' && entry.msg) message = entry.msg;
        } catch {
          // partial or non-JSON line
        }
      }
      return message;
    } finally {
      await file.close();
    }
  }

  create(id: string, opts: { pidFile: string; consoleSocket?: string; noPivot?: boolean; noNewKeyring?: boolean; stdio: StdioOptions }): Promise<Output> {
    const args = ['create', '--bundle', this.bundle, '--pid-file', opts.pidFile];
    if (opts.consoleSocket) args.push('--console-socket', opts.consoleSocket);
    if (opts.noPivot) args.push('--no-pivot');
    if (opts.noNewKeyring) args.push('--no-new-keyring');
    return this.run('create', [...args, id], { stdio: opts.stdio });
  }

  restore(id: string, opts: { pidFile: string; imagePath: string; workPath?: string; consoleSocket?: string; stdio: StdioOptions }): Promise<Output> {
    const args = ['restore', '--detach', '--bundle', this.bundle, '--pid-file', opts.pidFile, '--image-path', opts.imagePath];
    if (opts.workPath) args.push('--work-path', opts.workPath);
    if (opts.consoleSocket) args.push('--console-socket', opts.consoleSocket);
    return this.run('restore', [...args, id], { stdio: opts.stdio });
  }

  /** `initAlive` tells whether the container's init process still runs (see exec-fifo.ts). */
  async start(id: string, initAlive: () => boolean): Promise<void> {
    if (await startThroughExecFifo(this.config.binary, this.config.root, id, initAlive)) return;
    await this.run('start', ['start', id]);
  }

  exec(id: string, opts: { processFile: string; pidFile: string; consoleSocket?: string; stdio: StdioOptions }): Promise<Output> {
    const args = ['exec', '--process', opts.processFile, '--detach', '--pid-file', opts.pidFile];
    if (opts.consoleSocket) args.push('--console-socket', opts.consoleSocket);
    return this.run('exec', [...args, id], { stdio: opts.stdio });
  }

  kill(id: string, signal: number, all: boolean): Promise<Output> {
    return this.run('kill', ['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  delete(id: string, force: boolean): Promise<Output> {
    return this.run('delete', ['delete', ...(force ? ['--force'] : []), id]);
  }

  /** `delete` of a container whose init has exited (see stopped-delete.ts). */
  async deleteStopped(id: string): Promise<Output> {
    if (deleteStopped(this.config.binary, this.config.root, id)) return { stdout: '' };
    return this.delete(id, false);
  }

  async state(id: string): Promise<{ pid: number; status: string }> {
    const out = await this.run('state', ['state', id]);
    return JSON.parse(out.stdout) as { pid: number; status: string };
  }

  async ps(id: string): Promise<number[]> {
    const out = await this.run('ps', ['ps', '--format', 'json', id]);
    return (JSON.parse(out.stdout) as number[] | null) ?? [];
  }

  pause(id: string): Promise<Output> {
    return this.run('pause', ['pause', id]);
  }

  resume(id: string): Promise<Output> {
    return this.run('resume', ['resume', id]);
  }

  update(id: string, resourcesJson: string): Promise<Output> {
    return this.run('update', ['update', '--resources', '-', id], { input: resourcesJson });
  }

  checkpoint(id: string, args: readonly string[]): Promise<Output> {
    return this.run('checkpoint', ['checkpoint', ...args, id]);
  }
}
