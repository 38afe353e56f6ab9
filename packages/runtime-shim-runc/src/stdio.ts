/**
 * A process's stdio, from the strings in Create/Exec (upstream's semantics; the scheme is
 * decided by the stdout string):
 * - all empty: /dev/null;
 * - a path (or fifo://): FIFOs made by the client; the shim copies between them and kernel
 *   pipes given to the process (pipes, not socketpairs, so /dev/stdout can be opened);
 * - file://PATH: stdout and stderr appended to PATH. The file is handed to the process
 *   directly (O_APPEND), so output keeps flowing while the shim restarts;
 * - binary://PATH?k=v: a logging binary reads the process's pipes on fds 3 and 4 and
 *   closes fd 5 once ready;
 * - terminal: a console socket; runc sends the pty master back (see console.ts).
 */
import type { StdioOptions } from 'node:child_process';
import { closeSync, constants, createWriteStream, mkdirSync, openSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { InvalidArgumentError } from '@boxd/api';
import { closeFd, pipe } from './native.js';
import { ConsoleSocket, type PtyMaster } from './console.js';
import { spawnHelper } from './spawn.js';

export interface StdioSpec {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export interface IoContext {
  containerId: string;
  namespace: string;
  /** Directory for the console socket. */
  tempDir: string;
}

export interface ProcessIO {
  /** stdio for the runc call that makes the process (create, exec, restore). */
  readonly runcStdio: StdioOptions;
  readonly consoleSocket?: string;
  /** After that runc call succeeded: drop the process's ends, pick up the pty master. */
  attached(): Promise<void>;
  closeStdin(): void;
  resize(width: number, height: number): void;
  /** Resolves once the output copies have ended (at once when nothing is copied). */
  drained(): Promise<void>;
  /** Releases everything (the runc call failed, or the process is deleted). */
  close(): void;
}

type Scheme = 'null' | 'fifo' | 'file' | 'binary';

export function stdioScheme(spec: StdioSpec): { scheme: Scheme; path: string; url?: URL } {
  if (!spec.stdin && !spec.stdout && !spec.stderr) return { scheme: 'null', path: '' };
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(spec.stdout);
  if (!match) return { scheme: 'fifo', path: spec.stdout };
  let url: URL;
  try {
    url = new URL(spec.stdout);
  } catch {
    throw new InvalidArgumentError(`invalid stdio URI ${spec.stdout}`);
  }
  const scheme = match[1]!.toLowerCase();
  const path = decodeURIComponent(url.pathname);
  if (scheme === 'fifo' || scheme === 'file' || scheme === 'binary') return { scheme, path, url };
  throw new InvalidArgumentError(`unknown STDIO scheme ${scheme}`);
}

export async function openProcessIO(spec: StdioSpec, ctx: IoContext): Promise<ProcessIO> {
  const { scheme, path, url } = stdioScheme(spec);
  if (spec.terminal) return TerminalIO.open(spec, ctx);
  switch (scheme) {
    case 'null':
      return new FixedIO(['ignore', 'ignore', 'ignore'], []);
    case 'file':
      return openFileIO(path);
    case 'binary':
      return BinaryIO.open(path, url!, ctx);
    case 'fifo':
      return FifoIO.open(spec);
  }
}

/** Output for a client FIFO: O_RDWR never blocks and never fails with EPIPE, as upstream's extra read handle. A regular file there is appended to. */
function openOutput(path: string): Writable {
  if (statSync(path, { throwIfNoEntry: false })?.isFile()) return createWriteStream(path, { flags: 'a' });
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  return new Socket({ fd, readable: false, writable: true });
}

/** The read side of a client FIFO; libuv only reads once a writer has shown up, so no early EOF. */
function openInput(path: string): Socket {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return new Socket({ fd, readable: true, writable: false });
}

function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // already closed
  }
}

class FixedIO implements ProcessIO {
  constructor(
    readonly runcStdio: StdioOptions,
    private readonly fds: number[],
  ) {}
  /** The process holds its own copies now. */
  async attached(): Promise<void> {
    this.closeFds();
  }
  closeStdin(): void {}
  resize(): void {
    throw new InvalidArgumentError('process has no terminal');
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    this.closeFds();
  }
  private closeFds(): void {
    for (const fd of this.fds.splice(0)) quietly(() => closeSync(fd));
  }
}

function openFileIO(path: string): ProcessIO {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644);
  return new FixedIO(['ignore', fd, fd], [fd]);
}

/** Copies between client FIFOs and kernel pipes owned by the process. */
class FifoIO implements ProcessIO {
  readonly runcStdio: StdioOptions;
  private readonly childEnds: number[] = [];
  private readonly streams: { destroy(): unknown }[] = [];
  private readonly copies: Promise<void>[] = [];
  private stdin?: { source: Socket; sink: Socket };

  private constructor(spec: StdioSpec) {
    const stdio: StdioOptions = ['ignore', 'ignore', 'ignore'];
    try {
      if (spec.stdin) {
        const p = pipe();
        stdio[0] = p.read;
        this.childEnds.push(p.read);
        const source = openInput(spec.stdin);
        const sink = new Socket({ fd: p.write, readable: false, writable: true });
        this.stdin = { source, sink };
        this.streams.push(source, sink);
        // Client closed its end: the process sees EOF on stdin.
        void pipeline(source, sink).catch(() => {});
      }
      for (const [index, path] of [[1, spec.stdout], [2, spec.stderr]] as const) {
        if (!path) continue;
        const p = pipe();
        stdio[index] = p.write;
        this.childEnds.push(p.write);
        const source = new Socket({ fd: p.read, readable: true, writable: false });
        const sink = openOutput(path);
        this.streams.push(source, sink);
        this.copies.push(pipeline(source, sink).catch(() => {}));
      }
    } catch (err) {
      this.close();
      throw err;
    }
    this.runcStdio = stdio;
  }

  static async open(spec: StdioSpec): Promise<FifoIO> {
    return new FifoIO(spec);
  }

  async attached(): Promise<void> {
    for (const fd of this.childEnds.splice(0)) quietly(() => closeFd(fd));
  }

  closeStdin(): void {
    this.stdin?.source.destroy();
    this.stdin?.sink.end();
  }

  resize(): void {
    throw new InvalidArgumentError('process has no terminal');
  }

  async drained(): Promise<void> {
    await Promise.all(this.copies);
  }

  close(): void {
    for (const fd of this.childEnds.splice(0)) quietly(() => closeFd(fd));
    for (const s of this.streams.splice(0)) s.destroy();
  }
}

const LOGGER_STOP_GRACE_MS = 12_000;

/** binary:// — a logging binary gets the read ends of the process's stdout/stderr pipes. */
class BinaryIO extends FixedIO {
  private constructor(
    runcStdio: StdioOptions,
    childEnds: number[],
    private readonly logger: ReturnType<typeof spawnHelper>,
  ) {
    super(runcStdio, childEnds);
  }

  static async open(path: string, url: URL, ctx: IoContext): Promise<BinaryIO> {
    const out = pipe();
    const err = pipe();
    const ready = pipe();
    const args: string[] = [];
    for (const key of new Set(url.searchParams.keys())) args.push(key, url.searchParams.get(key) ?? '');
    const logger = spawnHelper(path, args, {
      stdio: ['ignore', 'ignore', 'ignore', out.read, err.read, ready.write],
      env: { CONTAINER_ID: ctx.containerId, CONTAINER_NAMESPACE: ctx.namespace },
      detached: true,
    });
    for (const fd of [out.read, err.read, ready.write]) closeFd(fd);
    const readySignal = new Socket({ fd: ready.read, readable: true, writable: false });
    try {
      await new Promise<void>((resolve, reject) => {
        readySignal.on('data', () => {});
        readySignal.once('close', () => resolve());
        logger.once('error', reject);
      });
    } catch (e) {
      closeFd(out.write);
      closeFd(err.write);
      throw new InvalidArgumentError(`logging binary ${path}: ${(e as Error).message}`);
    }
    return new BinaryIO(['ignore', out.write, err.write], [out.write, err.write], logger);
  }

  override close(): void {
    super.close();
    const logger = this.logger;
    if (logger.exitCode !== null || logger.signalCode !== null) return;
    logger.kill('SIGTERM');
    const timer = setTimeout(() => logger.kill('SIGKILL'), LOGGER_STOP_GRACE_MS);
    timer.unref();
    logger.once('exit', () => clearTimeout(timer));
  }
}

/** A pty: runc hands the master over the console socket; stdout and stderr are one stream. */
class TerminalIO implements ProcessIO {
  readonly runcStdio: StdioOptions = ['ignore', 'ignore', 'ignore'];
  private master?: PtyMaster;
  private stdin?: Socket;
  private output?: Promise<void>;

  private constructor(
    private readonly spec: StdioSpec,
    private readonly socket: ConsoleSocket,
  ) {}

  static async open(spec: StdioSpec, ctx: IoContext): Promise<TerminalIO> {
    return new TerminalIO(spec, await ConsoleSocket.create(ctx.tempDir));
  }

  get consoleSocket(): string {
    return this.socket.path;
  }

  async attached(): Promise<void> {
    try {
      this.master = await this.socket.receiveMaster();
    } finally {
      this.socket.close();
    }
    const master = this.master;
    if (this.spec.stdin) {
      this.stdin = openInput(this.spec.stdin);
      this.stdin.pipe(master.stream, { end: false });
    }
    this.output = this.spec.stdout ? copyUntilHangup(master.stream, terminalOutput(this.spec)) : Promise.resolve();
    if (!this.spec.stdout) master.stream.resume();
  }

  closeStdin(): void {
    this.stdin?.destroy();
  }

  resize(width: number, height: number): void {
    if (!this.master) throw new InvalidArgumentError('terminal not ready');
    this.master.resize(width, height);
  }

  async drained(): Promise<void> {
    await this.output;
  }

  close(): void {
    this.socket.close();
    this.stdin?.destroy();
    this.master?.stream.destroy();
  }
}

/** Where a terminal's output goes: the client's FIFO, or a file:// log. */
function terminalOutput(spec: StdioSpec): Writable {
  const { scheme, path } = stdioScheme(spec);
  if (scheme === 'file') {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    return createWriteStream(path, { flags: 'a', mode: 0o644 });
  }
  if (scheme === 'binary') throw new InvalidArgumentError('binary:// logging is not supported with a terminal');
  return openOutput(path);
}

/**
 * Copies the pty master to the client. Reading a master whose slave side is gone fails
 * with EIO: that is the end of output, and what was already read must still be flushed.
 */
function copyUntilHangup(master: Socket, sink: Writable): Promise<void> {
  return new Promise((resolve) => {
    let ended = false;
    const finish = (): void => {
      if (ended) return;
      ended = true;
      sink.once('close', () => resolve());
      sink.end();
    };
    sink.on('error', () => resolve());
    master.on('data', (chunk: Buffer) => {
      if (!sink.write(chunk)) {
        master.pause();
        sink.once('drain', () => master.resume());
      }
    });
    master.once('end', finish);
    master.once('error', finish);
  });
}
