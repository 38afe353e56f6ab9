/** Small async-iterable plumbing for byte streams. */
import { spawn } from 'node:child_process';
import { Readable, type Transform } from 'node:stream';

export type ByteStream = AsyncIterable<Buffer>;

/** The first `n` bytes (fewer if the stream is shorter) and the whole stream again. */
export async function peek(source: ByteStream, n: number): Promise<{ head: Buffer; stream: ByteStream }> {
  const iterator = source[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    seen.push(next.value);
    length += next.value.length;
  }
  async function* replay(): ByteStream {
    yield* seen;
    if (done) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  }
  return { head: Buffer.concat(seen).subarray(0, n), stream: replay() };
}

/** Runs bytes through a Node transform (zlib, ...), mapping its errors with `onError`. */
export async function* throughTransform(source: ByteStream, transform: Transform, onError: (err: Error) => Error): ByteStream {
  const input = Readable.from(source);
  input.on('error', (err) => transform.destroy(err));
  input.pipe(transform);
  try {
    for await (const chunk of transform) yield chunk as Buffer;
  } catch (err) {
    throw input.errored ? err : onError(err as Error);
  } finally {
    input.destroy();
    transform.destroy();
  }
}

export interface ProcessSpec {
  path: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Bytes the process can read on fd 3. */
  fd3?: Uint8Array;
  /** Names the process in errors. */
  label: string;
}

const STDERR_LIMIT = 16 << 10;

/** Runs bytes through a child process (stdin → stdout); a non-zero exit fails the stream with its stderr. */
export async function* throughProcess(source: ByteStream, spec: ProcessSpec, toError: (message: string) => Error): ByteStream {
  const stdio: ('pipe' | 'ignore')[] = ['pipe', 'pipe', 'pipe'];
  if (spec.fd3) stdio.push('pipe');
  const child = spawn(spec.path, spec.args, { stdio, env: spec.env ?? process.env });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    if (stderr.length < STDERR_LIMIT) stderr += b.toString('utf8');
  });
  if (spec.fd3) {
    const payload = child.stdio[3] as NodeJS.WritableStream;
    payload.on('error', () => undefined);
    payload.end(Buffer.from(spec.fd3));
  }
  let sourceError: unknown;
  const input = Readable.from(source);
  input.on('error', (err) => {
    sourceError = err;
    child.kill('SIGKILL');
  });
  child.stdin!.on('error', () => undefined); // EPIPE when the process exits before reading everything
  input.pipe(child.stdin!);
  let finished = false;
  try {
    for await (const chunk of child.stdout!) yield chunk as Buffer;
    const { code, signal, error } = await exited;
    if (sourceError) throw sourceError;
    if (error) throw toError(`${spec.label}: ${error.message}`);
    if (code !== 0) throw toError(`${spec.label} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${stderr.trim()}`);
    finished = true;
  } finally {
    if (!finished) child.kill('SIGKILL');
    input.destroy();
  }
}

/** Feeds every chunk to `observe` on its way through. */
export async function* tap(source: ByteStream, observe: (chunk: Buffer) => void): ByteStream {
  for await (const chunk of source) {
    observe(chunk);
    yield chunk;
  }
}
