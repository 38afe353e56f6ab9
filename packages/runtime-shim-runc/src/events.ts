/**
 * Task events to containerd: `containerd.services.events.ttrpc.v1.Events/Forward` on
 * TTRPC_ADDRESS over one persistent ttrpc connection, in order, each with the
 * `containerd-namespace-ttrpc` header. A failed Forward is retried with growing delays
 * (1 s, 2 s, ... as upstream) over a fresh connection; the queue is bounded.
 */
import { eventsTtrpc, timestampFromDate, type MessageCodec, type Init, type ServiceClient } from '@boxd/api';
import { TtrpcClient } from '@boxd/ttrpc';
import type { Logger } from 'pino';

export interface EventSink {
  publish<T>(topic: string, codec: MessageCodec<T>, event: Init<T>): void;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Queued {
  namespace: string;
  envelope: Init<eventsTtrpc.ForwardRequest>;
}

const MAX_QUEUE = 2048;
const MAX_ATTEMPTS = 5;
const FORWARD_TIMEOUT_MS = 5_000;

export class EventPublisher implements EventSink {
  private readonly queue: Queued[] = [];
  private client?: TtrpcClient;
  private events?: ServiceClient<typeof eventsTtrpc.EventsService>;
  private draining?: Promise<void>;
  private closed = false;

  constructor(
    private readonly address: string,
    private readonly namespace: string,
    private readonly logger: Logger,
    private readonly retryBaseMs = 1_000,
  ) {}

  publish<T>(topic: string, codec: MessageCodec<T>, event: Init<T>): void {
    if (this.closed) return;
    if (this.queue.length >= MAX_QUEUE) {
      const dropped = this.queue.shift();
      this.logger.warn({ topic: dropped?.envelope.envelope?.topic }, 'event queue full, dropping oldest event');
    }
    this.queue.push({
      namespace: this.namespace,
      envelope: {
        envelope: {
          timestamp: timestampFromDate(new Date()),
          namespace: this.namespace,
          topic,
          event: { type_url: codec.typeName, value: codec.encode(event) },
        },
      },
    });
    // Sending starts on the next turn of the event loop: the call that published answers
    // within this turn, and its answer should not queue behind the event, nor the core
    // handle the event before it.
    this.draining ??= nextTurn()
      .then(() => this.drain())
      .finally(() => (this.draining = undefined));
  }

  /** Resolves once everything queued so far was sent (or given up on). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.client?.close().catch(() => {});
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const next = this.queue[0]!;
      await this.send(next);
      this.queue.shift();
    }
  }

  private async send(item: Queued): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const events = await this.connect();
        await events.Forward(item.envelope, { namespace: item.namespace, timeoutMs: FORWARD_TIMEOUT_MS });
        return;
      } catch (err) {
        const topic = item.envelope.envelope?.topic;
        if (attempt >= MAX_ATTEMPTS) {
          this.logger.error({ err, topic }, 'giving up on publishing event');
          return;
        }
        this.logger.warn({ err, topic, attempt }, 'publishing event failed, retrying');
        if (this.client?.closed) this.reset();
        await new Promise((r) => setTimeout(r, this.retryBaseMs * attempt));
      }
    }
  }

  private async connect(): Promise<ServiceClient<typeof eventsTtrpc.EventsService>> {
    if (this.events && this.client && !this.client.closed) return this.events;
    this.reset();
    const client = await TtrpcClient.connect(this.address);
    client.onClose(() => {
      if (this.client === client) this.reset();
    });
    this.client = client;
    this.events = client.service(eventsTtrpc.EventsService);
    return this.events;
  }

  private reset(): void {
    const old = this.client;
    this.client = undefined;
    this.events = undefined;
    void old?.close().catch(() => {});
  }
}
