import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOk, terminate } from '@boxd/test-utils';

export const PEER_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '../../go/ttrpc-peer');
const CACHE = join(tmpdir(), 'boxd-e2e-go');

/** Builds with Debian's Go and Debian's Go sources only: GOPATH mode, no module proxy, no network. */
function goEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH: '/usr/share/gocode',
    GOFLAGS: '',
    GOPROXY: 'off',
    GOCACHE: join(CACHE, 'cache'),
  };
}

async function sourceHash(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(dir)).sort()) {
    if (!name.endsWith('.go')) continue;
    hash.update(name).update('\0').update(await readFile(join(dir, name))).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The ttrpc-peer binary for the current sources, built once and cached under the temp dir
 * by source hash. Throws (so the test fails, never skips) if Go is not installed.
 */
export async function buildGoPeer(): Promise<string> {
  const go = await run('go', ['version']).catch((e: Error) => ({ code: -1, stderr: e.message }));
  if (go.code !== 0) throw new Error(`Go toolchain missing (apt-get install golang-go golang-github-containerd-ttrpc-dev): ${go.stderr}`);
  const binary = join(CACHE, await sourceHash(PEER_SOURCE), 'ttrpc-peer');
  if (existsSync(binary)) return binary;
  await mkdir(dirname(binary), { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  await runOk('go', ['build', '-o', partial, '.'], { cwd: PEER_SOURCE, env: goEnv(), timeoutMs: 240_000 });
  await rename(partial, binary);
  return binary;
}

export interface GoServer {
  socket: string;
  stop(): Promise<void>;
}

/** Starts `ttrpc-peer serve socket` and waits until it says it is listening. */
export async function startGoServer(binary: string, socket: string): Promise<GoServer> {
  const child: ChildProcess = spawn(binary, ['serve', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`ttrpc-peer serve exited ${code}: ${stderr}`)));
    child.once('error', reject);
  });
  return {
    socket,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) await terminate(child.pid!, 3_000);
    },
  };
}

export type GoCallOutcome =
  | { text: string; metadata: Record<string, string[]>; hasDeadline: boolean }
  | { code: number; message: string };

export interface GoCallOptions {
  text?: string;
  fail?: { code: number; message: string };
  metadata?: [string, string][];
  timeout?: string;
  service?: string;
  method?: string;
}

/** One unary call made by the Go ttrpc client; returns its JSON outcome. */
export async function goCall(binary: string, socket: string, opts: GoCallOptions = {}): Promise<GoCallOutcome> {
  const args = ['call'];
  if (opts.text !== undefined) args.push('-text', opts.text);
  if (opts.fail) args.push('-fail', `${opts.fail.code}:${opts.fail.message}`);
  for (const [k, v] of opts.metadata ?? []) args.push('-md', `${k}=${v}`);
  if (opts.timeout) args.push('-timeout', opts.timeout);
  if (opts.service) args.push('-service', opts.service);
  if (opts.method) args.push('-method', opts.method);
  args.push(socket);
  const r = await runOk(binary, args, { timeoutMs: 20_000 });
  return JSON.parse(r.stdout) as GoCallOutcome;
}
