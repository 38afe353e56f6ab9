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
import { join } from 'node:path';
import { isRunc } from './runc-binary.js';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 1;

/** One byte from a non-blocking fifo: true once read, false while none is there yet. */
function readOne(fd: number): boolean {
  try {
    return readSync(fd, Buffer.alloc(1), 0, 1, null) === 1;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return false;
    throw err;
  }
}

/**
 * Lets the init process of created container `id` exec the user's process, as
 * `runc start` would; false (nothing done) when runc should be asked instead.
 * `initAlive` is polled while init has not written yet.
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
  try {
    if (!fstatSync(fd).isFIFO()) return false;
    while (!readOne(fd)) {
      if (!initAlive()) return false;
      await sleep(POLL_MS);
    }
  } catch {
    // Nothing read yet: runc can still do it, and says what is wrong if it cannot.
    return false;
  } finally {
    closeSync(fd);
  }
  // Init is on its way now; a fifo already gone (the container deleted meanwhile) changes nothing.
  rmSync(path, { force: true });
  return true;
}
