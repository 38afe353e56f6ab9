/**
 * Eventfds the kernel signals, with a callback each. Node cannot poll an eventfd (it
 * takes only pipes and sockets as streams), so one epoll set holds them all and a
 * single epoll_wait runs on libuv's thread pool (a koffi async call), only while any
 * eventfd is registered. That holds one thread of the pool for the time.
 *
 * Two things keep the process's exit safe: libuv joins the pool's threads as the
 * process exits, so a wait still blocked then would hang it, and is woken on 'exit';
 * and the kernel writes the events it reports into native memory that is never
 * freed, not into a Buffer that exit may already have released.
 */
import { libc as load } from './libc.js';
import { check } from './native.js';

const CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLLIN = 1;
// struct epoll_event is packed on x86-64 (u32 events, u64 data: 12 bytes); elsewhere
// the data is 8-aligned (16 bytes).
const EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const DATA_OFFSET = process.arch === 'x64' ? 4 : 8;
const MAX_EVENTS = 32;
/** The token of the eventfd that ends a wait nobody needs any more. */
const WAKE_TOKEN = 0;

/** A registered eventfd: hand `fd` to the kernel, `close()` when done. */
export interface Eventfd {
  readonly fd: number;
  close(): void;
}

export class EventfdSet {
  private epfd = -1;
  private wakeFd = -1;
  /** Tokens, not fds, name the eventfds in epoll: a closed fd's number may come back. */
  private readonly handlers = new Map<number, { fd: number; signalled: () => void }>();
  private nextToken = WAKE_TOKEN + 1;
  private waiting = false;
  private events?: { memory: unknown; view: DataView };

  /** A new eventfd; `signalled` runs (on the main thread) each time the kernel signals it. */
  open(signalled: () => void): Eventfd {
    const c = load();
    this.start();
    const fd = check('eventfd', c.eventfd(0, CLOEXEC | EFD_NONBLOCK));
    const token = this.nextToken++;
    try {
      this.control(EPOLL_CTL_ADD, fd, token);
    } catch (err) {
      c.close(fd);
      throw err;
    }
    this.handlers.set(token, { fd, signalled });
    this.wait();
    return { fd, close: () => this.remove(token) };
  }

  private start(): void {
    if (this.epfd >= 0) return;
    const c = load();
    this.epfd = check('epoll_create1', c.epollCreate(CLOEXEC));
    this.wakeFd = check('eventfd', c.eventfd(0, CLOEXEC | EFD_NONBLOCK));
    this.control(EPOLL_CTL_ADD, this.wakeFd, WAKE_TOKEN);
    const memory = c.koffi.alloc('uint8_t', EVENT_SIZE * MAX_EVENTS);
    this.events = { memory, view: new DataView(c.koffi.view(memory, EVENT_SIZE * MAX_EVENTS)) };
    process.on('exit', () => this.signal(this.wakeFd));
  }

  private control(op: number, fd: number, token: number): void {
    const event = Buffer.alloc(EVENT_SIZE);
    event.writeUInt32LE(EPOLLIN, 0);
    event.writeUInt32LE(token, DATA_OFFSET);
    check('epoll_ctl', load().epollCtl(this.epfd, op, fd, event));
  }

  private remove(token: number): void {
    const h = this.handlers.get(token);
    if (!h) return;
    this.handlers.delete(token);
    this.control(EPOLL_CTL_DEL, h.fd, token);
    load().close(h.fd);
    // Nothing left to wait for: end the wait so it gives its thread back.
    if (this.handlers.size === 0 && this.waiting) this.signal(this.wakeFd);
  }

  private wait(): void {
    const events = this.events;
    if (this.waiting || this.handlers.size === 0 || !events) return;
    this.waiting = true;
    load().epollWait.async(this.epfd, events.memory, MAX_EVENTS, -1, (err: unknown, n: number) => {
      this.waiting = false;
      // n < 0 is EINTR: a signal reached the pool's thread. Wait again.
      for (let i = 0; !err && i < n; i++) this.dispatch(events.view.getUint32(i * EVENT_SIZE + DATA_OFFSET, true));
      this.wait();
    });
  }

  private dispatch(token: number): void {
    if (token === WAKE_TOKEN) return void this.drain(this.wakeFd);
    const h = this.handlers.get(token);
    // Closed since the wait returned: its signal is of no interest any more.
    if (!h) return;
    this.drain(h.fd);
    h.signalled();
  }

  /** Reads the counter back to zero, or epoll would report the fd again at once. */
  private drain(fd: number): void {
    load().read(fd, Buffer.alloc(8), 8);
  }

  private signal(fd: number): void {
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    load().write(fd, one, 8);
  }
}
