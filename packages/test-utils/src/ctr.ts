import { run, CommandError, type RunResult } from './exec.js';

export const CTR = '/usr/bin/ctr';

export interface CtrOptions {
  /** containerd namespace (ctr's -n); ctr's own default is "default". */
  namespace?: string;
  /** Written to ctr's stdin (e.g. an archive for `images import -`). */
  input?: string | Buffer;
  /** Default 60 s. */
  timeoutMs?: number;
}

export interface CtrResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when ctr was killed (timeout). */
  code: number | null;
}

function ctrArgs(address: string, args: readonly string[], opts: CtrOptions): string[] {
  const ns = opts.namespace ? ['-n', opts.namespace] : [];
  return ['-a', address, ...ns, ...args];
}

async function runCtr(address: string, args: readonly string[], opts: CtrOptions): Promise<{ argv: string[]; result: RunResult }> {
  const argv = ctrArgs(address, args, opts);
  const result = await run(CTR, argv, { input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 });
  return { argv, result };
}

/** Runs upstream `ctr -a address ...args`; never throws on a non-zero exit. */
export async function ctr(address: string, args: readonly string[], opts: CtrOptions = {}): Promise<CtrResult> {
  const { result } = await runCtr(address, args, opts);
  return { stdout: result.stdout, stderr: result.stderr, code: result.code };
}

/** Runs ctr and throws (with its stderr) unless it exits 0. */
export async function ctrOk(address: string, args: readonly string[], opts: CtrOptions = {}): Promise<CtrResult> {
  const { argv, result } = await runCtr(address, args, opts);
  if (result.code !== 0) throw new CommandError(['ctr', ...argv].join(' '), result);
  return { stdout: result.stdout, stderr: result.stderr, code: result.code };
}
