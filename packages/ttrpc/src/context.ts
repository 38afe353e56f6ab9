/** The CallContext handed to server handlers. */
import type { CallContext, Metadata } from '@boxd/api';

const EMPTY_METADATA: Metadata = Object.freeze(Object.create(null)) as Metadata;

export class ServerCallContext implements CallContext {
  readonly transport = 'ttrpc' as const;
  readonly metadata: Metadata;
  readonly deadline: number | undefined;
  // Created on first access: most handlers never look at the signal, and an
  // AbortController per call is measurable on the unary hot path.
  private controller: AbortController | undefined;
  private reason: unknown;
  private aborted = false;

  constructor(metadata: Metadata | undefined, deadline: number | undefined) {
    this.metadata = metadata ?? EMPTY_METADATA;
    this.deadline = deadline;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}
