/**
 * The shim's shortcuts past runc (exec-fifo.ts, stopped-delete.ts) read runc's own
 * state files: they apply to runc only, any other runtime (crun) is always run.
 */
import { basename } from 'node:path';

export function isRunc(binary: string): boolean {
  return basename(binary || 'runc') === 'runc';
}
