/** Running a shim binary's `start` and `delete` subcommands, as containerd does. */
import { spawn } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { FailedPreconditionError, protobuf, taskV2, type Init } from '@boxd/api';

export interface ShimContext {
  binary: string;
  bundle: string;
  namespace: string;
  id: string;
  /** The core's gRPC socket: shims name their own socket after it. */
  address: string;
  /** Where shims publish events (containerd.services.events.ttrpc.v1.Events). */
  ttrpcAddress: string;
  publishBinary: string;
}

/** `io.containerd.runc.v2` → `containerd-shim-runc-v2`, or a configured override. */
export function shimBinaryName(runtime: string, overrides: Record<string, string>): string {
  if (overrides[runtime]) return overrides[runtime];
  if (isAbsolute(runtime)) return runtime;
  const parts = runtime.split('.');
  if (parts.length < 2 || !parts[0]) throw new FailedPreconditionError(`invalid runtime name ${runtime}, correct runtime name should be either format like \`io.containerd.runc.v1\` or a full path to the binary`);
  return `containerd-shim-${parts[parts.length - 2]}-${parts[parts.length - 1]}`;
}

function args(ctx: ShimContext, extra: string[]): string[] {
  return ['-namespace', ctx.namespace, '-address', ctx.address, '-publish-binary', ctx.publishBinary, '-id', ctx.id, ...extra];
}

function runShim(ctx: ShimContext, extra: string[], stdin: Uint8Array | undefined, timeoutMs: number): Promise<{ code: number | null; out: Buffer; err: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(ctx.binary, args(ctx, extra), {
      cwd: ctx.bundle,
      env: { ...process.env, TTRPC_ADDRESS: ctx.ttrpcAddress, GRPC_ADDRESS: ctx.address, NAMESPACE: ctx.namespace, GOMAXPROCS: '2' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: Buffer.concat(out), err: Buffer.concat(err) });
    });
    child.stdin.end(stdin ? Buffer.from(stdin) : undefined);
  });
}

/** `shim start`: returns the ttrpc address the shim serves the task on. */
export async function startShim(ctx: ShimContext, options: Init<protobuf.Any> | null | undefined): Promise<string> {
  const stdin = options?.type_url ? protobuf.Any.encode(options) : undefined;
  const res = await runShim(ctx, ['start'], stdin, 30_000);
  // containerd reads stdout and stderr combined.
  const text = Buffer.concat([res.out, res.err]).toString().trim();
  if (res.code !== 0) throw new FailedPreconditionError(`failed to start shim: ${text || `exit status ${res.code}`}`);
  return parseStartOutput(text);
}

/** A plain address, or containerd 1.7's JSON form. */
export function parseStartOutput(text: string): string {
  try {
    const parsed = JSON.parse(text) as { version?: number; address?: string };
    if (typeof parsed === 'object' && parsed && typeof parsed.address === 'string') return parsed.address;
  } catch {
    // Plain address.
  }
  return text;
}

/** `shim delete` for a shim that is gone: cleans up and reports the exit. */
export async function deleteShim(ctx: ShimContext): Promise<taskV2.DeleteResponse> {
  const res = await runShim(ctx, ['-bundle', ctx.bundle, 'delete'], undefined, 5_000);
  if (res.code !== 0) throw new FailedPreconditionError(`shim delete failed: ${res.err.toString().trim() || `exit status ${res.code}`}`);
  return taskV2.DeleteResponse.decode(res.out);
}
