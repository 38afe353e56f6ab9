/** Client-side building blocks of the suite: blobs, ingests, reads and error checks. */
import { createHash, randomBytes } from 'node:crypto';
import Long from 'long';
import { expect } from 'vitest';
import { codeName, content, isBoxdError, type BidiStreamCall, type CallOptions, type Init, type ServiceClient } from '@boxd/api';

export type ContentClient = ServiceClient<typeof content.ContentService>;
export type WriteCall = BidiStreamCall<content.WriteContentRequest, content.WriteContentResponse>;
export type WriteResponse = content.WriteContentResponse;

export const { STAT, WRITE, COMMIT } = content.WriteAction;
export const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const MiB = 1 << 20;

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface Blob {
  data: Buffer;
  digest: string;
}

export function randomBlob(size: number): Blob {
  const data = randomBytes(size);
  return { data, digest: sha256(data) };
}

/** A 64-bit wire value as a number (test sizes are far below 2^53). */
export function num(value: Long | number | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return Long.fromValue(value as Long | number | string).toNumber();
}

/** Everything one test run needs: the client, call options, and names that cannot collide with other runs. */
export class SuiteEnv {
  readonly runId = randomBytes(6).toString('hex');
  private client_: ContentClient | undefined;
  readonly createdDigests = new Set<string>();
  readonly createdRefs = new Set<string>();

  readonly namespace: string | undefined;
  private readonly metadata: Record<string, string>;

  constructor(
    private readonly endpoint: {
      connect: () => Promise<ContentClient> | ContentClient;
      disconnect?: (client: ContentClient) => Promise<void> | void;
      namespace?: string;
      metadata?: Record<string, string>;
    },
  ) {
    this.namespace = endpoint.namespace;
    this.metadata = endpoint.metadata ?? {};
  }

  async connect(): Promise<ContentClient> {
    return this.endpoint.connect();
  }

  /** Makes a stream's client vanish the way a crashed client would. */
  async drop(client: ContentClient, call: WriteCall): Promise<void> {
    call.cancel();
    await this.endpoint.disconnect?.(client);
  }

  set client(client: ContentClient) {
    this.client_ = client;
  }

  get client(): ContentClient {
    if (!this.client_) throw new Error('content suite: connect() has not run yet');
    return this.client_;
  }

  get options(): CallOptions {
    return { metadata: this.metadata, ...(this.namespace ? { namespace: this.namespace } : {}) };
  }

  ref(name: string): string {
    const ref = `boxd-suite-${this.runId}-${name}`;
    this.createdRefs.add(ref);
    return ref;
  }

  openWrite(client: ContentClient = this.client): WriteCall {
    return client.Write(this.options);
  }

  async exchange(call: WriteCall, request: Init<content.WriteContentRequest>): Promise<WriteResponse> {
    await call.send(request);
    const response = await call.recv();
    if (!response) throw new Error('write stream ended without a response');
    return response;
  }

  /** Writes `data` in chunks and commits it; returns the (first) commit response. */
  async writeBlob(
    data: Uint8Array,
    options: { ref?: string; expected?: string; labels?: Record<string, string>; chunkSize?: number } = {},
  ): Promise<WriteResponse> {
    const ref = options.ref ?? this.ref(`blob-${randomBytes(4).toString('hex')}`);
    const call = this.openWrite();
    try {
      await this.exchange(call, { action: STAT, ref, total: data.length, expected: options.expected });
      const chunkSize = options.chunkSize ?? MiB;
      for (let offset = 0; offset < data.length; offset += chunkSize) {
        await call.send({ action: WRITE, offset, data: data.subarray(offset, offset + chunkSize) });
      }
      // Responses are drained after sending everything: one per request, in order.
      for (let offset = 0; offset < data.length; offset += chunkSize) {
        const response = await call.recv();
        expect(num(response?.offset)).toBe(Math.min(offset + chunkSize, data.length));
      }
      const committed = await this.exchange(call, {
        action: COMMIT,
        offset: data.length,
        total: data.length,
        expected: options.expected ?? sha256(data),
        labels: options.labels,
      });
      this.createdDigests.add(committed.digest);
      await drainCommitResponses(call);
      return committed;
    } finally {
      call.cancel();
    }
  }

  async commitBlob(blob: Blob, labels?: Record<string, string>): Promise<void> {
    const committed = await this.writeBlob(blob.data, { labels });
    expect(committed.digest).toBe(blob.digest);
  }

  /** Reads a blob range; returns the bytes and the offset each response reported. */
  async read(digest: string, offset = 0, size = 0): Promise<{ data: Buffer; offsets: number[]; sizes: number[] }> {
    const parts: Buffer[] = [];
    const offsets: number[] = [];
    const sizes: number[] = [];
    for await (const response of this.client.Read({ digest, offset, size }, this.options)) {
      parts.push(Buffer.from(response.data));
      offsets.push(num(response.offset));
      sizes.push(response.data.length);
    }
    return { data: Buffer.concat(parts), offsets, sizes };
  }

  async info(digest: string): Promise<content.Info> {
    const { info } = await this.client.Info({ digest }, this.options);
    if (!info) throw new Error(`Info(${digest}) returned no info`);
    return info;
  }

  async list(filters: string[]): Promise<content.Info[][]> {
    const batches: content.Info[][] = [];
    for await (const response of this.client.List({ filters }, this.options)) batches.push(response.info);
    return batches;
  }

  async status(ref: string): Promise<content.Status> {
    const { status } = await this.client.Status({ ref }, this.options);
    if (!status) throw new Error(`Status(${ref}) returned no status`);
    return status;
  }

  /** Best effort: removes what this run created, so repeated runs leave nothing behind. */
  async removeLeftovers(): Promise<void> {
    const removals = [
      ...[...this.createdRefs].map((ref) => () => this.client.Abort({ ref }, this.options)),
      ...[...this.createdDigests].map((digest) => () => this.client.Delete({ digest }, this.options)),
    ];
    for (let i = 0; i < removals.length; i += 16) {
      await Promise.all(removals.slice(i, i + 16).map((remove) => remove().catch(() => undefined)));
    }
  }
}

/** After a commit the server may repeat the commit response once; then the stream ends OK. */
export async function drainCommitResponses(call: WriteCall): Promise<void> {
  for (let extra = 0; ; extra++) {
    const response = await call.recv();
    if (!response) return;
    expect(response.action, 'only a repeated commit response may follow a commit').toBe(COMMIT);
    expect(extra, 'at most one repeated commit response').toBe(0);
  }
}

/** Awaits `promise` and checks it fails with the gRPC status `code` (and optionally a message part). */
export async function expectCode(promise: Promise<unknown>, code: number, messagePart?: string | RegExp): Promise<Error> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  expect(error, `expected ${codeName(code)}, but the call succeeded`).toBeDefined();
  expect(isBoxdError(error) ? codeName(error.code) : `non-status error: ${String(error)}`).toBe(codeName(code));
  if (messagePart !== undefined) expect((error as Error).message).toMatch(messagePart);
  return error as Error;
}

export async function drainStream(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // consume
  }
}

/** Runs `attempt` until it stops failing with UNAVAILABLE, as real clients do after a dropped stream. */
export async function retryUnavailable<T>(attempt: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      return await attempt();
    } catch (err) {
      if (!isBoxdError(err) || codeName(err.code) !== 'UNAVAILABLE' || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
