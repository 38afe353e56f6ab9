/**
 * runc's `--console-socket`: runc connects to a unix socket of ours and sends the pty
 * master with SCM_RIGHTS. Node cannot receive descriptors, so the accepted connection
 * is left paused (libuv never reads it) and polled with a non-blocking recvmsg.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import tty from 'node:tty';
import { closeFd, receiveFd, setWindowSize } from './native.js';

export interface PtyMaster {
  readonly fd: number;
  /** Read and write the terminal; fails with EIO once the slave side is gone. */
  readonly stream: tty.ReadStream;
  resize(width: number, height: number): void;
}

const POLL_MS = 2;
const RECEIVE_TIMEOUT_MS = 30_000;

function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('console socket connection has no descriptor');
  return fd;
}

export class ConsoleSocket {
  private readonly received: Promise<number>;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly path: string,
    private readonly server: Server,
  ) {
    this.received = new Promise((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error('timed out waiting for the pty master from the runtime')), RECEIVE_TIMEOUT_MS);
      timeout.unref();
      server.once('connection', (conn: Socket) => this.poll(conn, timeout, resolve, reject));
    });
    this.received.catch(() => {});
  }

  static async create(tempDir: string): Promise<ConsoleSocket> {
    const dir = await mkdtemp(join(tempDir, 'pty'));
    const path = join(dir, 'pty.sock');
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return new ConsoleSocket(dir, path, server);
  }

  private poll(conn: Socket, timeout: NodeJS.Timeout, resolve: (fd: number) => void, reject: (e: Error) => void): void {
    const tick = (): void => {
      try {
        const got = receiveFd(fdOf(conn));
        if (got === 'again') {
          if (!this.closed) setTimeout(tick, POLL_MS);
          else reject(new Error('console socket closed'));
          return;
        }
        clearTimeout(timeout);
        conn.destroy();
        if (got === 'closed') reject(new Error('runtime closed the console socket without sending a pty'));
        else resolve(got.fd);
      } catch (err) {
        clearTimeout(timeout);
        conn.destroy();
        reject(err as Error);
      }
    };
    tick();
  }

  async receiveMaster(): Promise<PtyMaster> {
    const fd = await this.received;
    let stream: tty.ReadStream;
    try {
      stream = new tty.ReadStream(fd);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return {
      fd,
      stream,
      resize: (width, height) => setWindowSize(fd, height, width),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    void rm(this.dir, { recursive: true, force: true });
  }
}
