/**
 * Starting a created runc container without running `runc start`.
 *
 * runc's `create` leaves the container's init process waiting to open
 * `<root>/<id>/exec.fifo` for writing; `runc start` checks the container is still
 * created, opens the fifo, reads the one byte init writes (after which init execs
 * the user's process) and removes the fifo, whose absence is what makes runc
 * report the container running from then on. That is all it does, and starting a
 * Go binary to do it costs ~4 ms of a container's start here; doing it in the
 * shim costs well under one.
 *
 * Only for runc itself, and only the common case: whenever the fifo is not there
 * or init is no longer alive to write to it, the caller runs `runc start`, which
 * answers as runc does (a stopped container, one already started).
 */
import { closeSync, constants, fstatSync, openSync, readSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { isRunc } from './runc-binary.js';

/**
 * How often a wait for init's byte checks that init still lives. The byte itself is
 * awaited through the event loop: polling for it cost ~1.3 ms of every other start
 * here, init writing a fraction of a millisecond after the fifo opened.
 */
const LIVENESS_POLL_MS = 10;

/** One byte from a non-blocking fifo: true once read, false while none is there (yet). */
function readOne(fd: number): boolean {
  try {
    return readSync(fd, Buffer.alloc(1), 0, 1, null) === 1;
  } catch {
    return false;
  }
}

/**
 * Whether init wrote its byte to the fifo open for reading at `fd` (taken over and
 * closed): false once the writer closed without writing or init died before opening it.
 */
function initWrote(fd: number, initAlive: () => boolean): Promise<boolean> {
  // Often written already: init runs as soon as the fifo opens.
  if (readOne(fd)) {
    closeSync(fd);
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    // A fifo read end with no writer yet raises no hang-up until a writer has come and gone.
    const fifo = new Socket({ fd, readable: true, writable: false });
    const done = (wrote: boolean) => {
      clearInterval(liveness);
      fifo.destroy();
      resolve(wrote);
    };
    const liveness = setInterval(() => {
      if (!initAlive()) done(false);
    }, LIVENESS_POLL_MS);
    fifo.once('data', () => done(true));
    fifo.once('end', () => done(false));
    fifo.once('error', () => done(false));
  });
}

/**
 * Lets the init process of created container `id` exec the user's process, as
 * `runc start` would; false (nothing done) when runc should be asked instead.
 * `initAlive` is asked now and then while init has not written yet.
 */
export async function startThroughExecFifo(binary: string, root: string, id: string, initAlive: () => boolean): Promise<boolean> {
  if (!isRunc(binary)) return false;
  const path = join(root, id, 'exec.fifo');
  let fd: number;
  try {
    // Non-blocking: with no writer yet the open still succeeds, and a dead init never hangs us.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  let isFifo = false;
  try {
    isFifo = fstatSync(fd).isFIFO();
  } catch {
    // Not a file we can use: runc looks at it instead.
  }
  if (!isFifo) {
    closeSync(fd);
    return false;
  }
  // Nothing read: runc can still do it, and says what is wrong if it cannot.
  if (!(await initWrote(fd, initAlive))) return false;
  // Init is on its way now; a fifo already gone (the container deleted meanwhile) changes nothing.
  rmSync(path, { force: true });
  return true;
}
