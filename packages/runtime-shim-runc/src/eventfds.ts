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

/** The epoll set, its wake eventfd and the native array the kernel reports into. */
interface Epoll {
  fd: number;
  wakeFd: number;
  memory: unknown;
  view: DataView;
}

function createEpoll(): Epoll {
  const c = load();
  const fd = check('epoll_create1', c.epollCreate(CLOEXEC));
  const wakeFd = check('eventfd', c.eventfd(0, CLOEXEC | EFD_NONBLOCK));
  control(fd, EPOLL_CTL_ADD, wakeFd, WAKE_TOKEN);
  const memory = c.koffi.alloc('uint8_t', EVENT_SIZE * MAX_EVENTS);
  return { fd, wakeFd, memory, view: new DataView(c.koffi.view(memory, EVENT_SIZE * MAX_EVENTS)) };
}

function control(epfd: number, op: number, fd: number, token: number): void {
  const event = Buffer.alloc(EVENT_SIZE);
  event.writeUInt32LE(EPOLLIN, 0);
  event.writeUInt32LE(token, DATA_OFFSET);
  check('epoll_ctl', load().epollCtl(epfd, op, fd, event));
}

export class EventfdSet {
  private epoll?: Epoll;
  /** Tokens, not fds, name the eventfds in epoll: a closed fd's number may come back. */
  private readonly handlers = new Map<number, { fd: number; signalled: () => void }>();
  private nextToken = WAKE_TOKEN + 1;
  private waiting = false;

  /** A new eventfd; `signalled` runs (on the main thread) each time the kernel signals it. */
  open(signalled: () => void): Eventfd {
    const c = load();
    const epoll = this.started();
    const fd = check('eventfd', c.eventfd(0, CLOEXEC | EFD_NONBLOCK));
    const token = this.nextToken++;
    try {
      control(epoll.fd, EPOLL_CTL_ADD, fd, token);
    } catch (err) {
      c.close(fd);
      throw err;
    }
    this.handlers.set(token, { fd, signalled });
    this.wait(epoll);
    return { fd, close: () => this.remove(epoll, token) };
  }

  private started(): Epoll {
    if (this.epoll) return this.epoll;
    const epoll = (this.epoll = createEpoll());
    process.on('exit', () => signal(epoll.wakeFd));
    return epoll;
  }

  private remove(epoll: Epoll, token: number): void {
    const h = this.handlers.get(token);
    if (!h) return;
    this.handlers.delete(token);
    control(epoll.fd, EPOLL_CTL_DEL, h.fd, token);
    load().close(h.fd);
    // Nothing left to wait for: end the wait so it gives its thread back.
    if (this.handlers.size === 0 && this.waiting) signal(epoll.wakeFd);
  }

  private wait(epoll: Epoll): void {
    if (this.waiting || this.handlers.size === 0) return;
    this.waiting = true;
    load().epollWait.async(epoll.fd, epoll.memory, MAX_EVENTS, -1, (err: unknown, n: number) => {
      this.waiting = false;
      // n < 0 is EINTR: a signal reached the pool's thread. Wait again.
      for (let i = 0; !err && i < n; i++) this.dispatch(epoll, epoll.view.getUint32(i * EVENT_SIZE + DATA_OFFSET, true));
      this.wait(epoll);
    });
  }

  private dispatch(epoll: Epoll, token: number): void {
    if (token === WAKE_TOKEN) return void drain(epoll.wakeFd);
    const h = this.handlers.get(token);
    // Closed since the wait returned: its signal is of no interest any more.
    if (!h) return;
    drain(h.fd);
    h.signalled();
  }
}

/** Reads an eventfd's counter back to zero, or epoll would report it again at once. */
function drain(fd: number): void {
  load().read(fd, Buffer.alloc(8), 8);
}

function signal(fd: number): void {
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  load().write(fd, one, 8);
}
