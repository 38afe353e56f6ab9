/**
 * Answers to a relayed Content.Write's WRITE messages, given before the store's own.
 *
 * containerd's writer sends a chunk and waits for its answer before reading the
 * next one: relayed, every MiB waits for the core, the store's hashing and
 * writing and the core again, and the client, the core and the store take turns
 * at the CPU. A plain append (the next offset, data, nothing expected) is
 * answered at once with the offset it will reach, while the store's answers are
 * checked as they come. The client learns of a failure at its next message at
 * the latest, and no commit goes out before every answer is in: a blob is never
 * committed from bytes the store did not take.
 */
import { content, InternalError, UnavailableError, type Init } from '@boxd/api';

type WriteRequest = content.WriteContentRequest;
type WriteResponse = Init<content.WriteContentResponse>;

/** Answers still owed by the store: bounds what the relay holds on to. */
const MAX_AHEAD = 4;

export class WritesAhead {
  private owed: Array<Promise<void>> = [];
  private failure: { err: unknown } | undefined;
  /** Where the next plain append starts, once the store has said. */
  private next: number | undefined;
  private last: content.WriteContentResponse | undefined;

  constructor(private readonly recv: () => Promise<content.WriteContentResponse | undefined>) {}

  /** The store's last digest, once every owed answer is in. */
  get lastDigest(): string {
    return this.last?.digest ?? '';
  }

  /** Whether `msg` can be answered before the store does. */
  canAnswer(msg: WriteRequest): boolean {
    return msg.action === content.WriteAction.WRITE && msg.data.length > 0 && !msg.expected && this.next !== undefined && Number(msg.offset) === this.next;
  }

  /** `msg` went to the store: the answer it will get, given now. */
  async answer(msg: WriteRequest): Promise<WriteResponse> {
    this.rethrow();
    const end = this.next! + msg.data.length;
    this.next = end;
    this.owed.push(this.recv().then((res) => this.check(res, end), (err: unknown) => this.fail(err)));
    if (this.owed.length > MAX_AHEAD) await this.owed.shift();
    this.rethrow();
    return { action: content.WriteAction.WRITE, offset: end, total: this.last?.total ?? 0, startedAt: this.last?.startedAt, updatedAt: this.last?.updatedAt };
  }

  /** Waits for every owed answer; throws the first failure among them. */
  async settle(): Promise<void> {
    const owed = this.owed;
    this.owed = [];
    await Promise.all(owed);
    this.rethrow();
  }

  /** An answer the relay waited for: the next plain append starts where it says. */
  answered(res: content.WriteContentResponse): void {
    this.last = res;
    this.next = Number(res.offset);
  }

  private check(res: content.WriteContentResponse | undefined, end: number): void {
    if (!res) return this.fail(new UnavailableError('content store ended the write stream'));
    if (Number(res.offset) !== end) return this.fail(new InternalError(`content store took the write up to offset ${String(res.offset)}, not ${end}`));
    this.last = res;
  }

  private fail(err: unknown): void {
    this.failure ??= { err };
    this.next = undefined;
  }

  private rethrow(): void {
    if (this.failure) throw this.failure.err;
  }
}
