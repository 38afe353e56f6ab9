/**
 * What the core knows of the shims it talks to: one shared ttrpc connection per
 * shim address, kept while the shim lives (a task joining a grouping shim does not
 * pay for a new one); the shim each binary and namespace sent its last task to,
 * which a new task of that namespace may join instead of running `start`; and what
 * each shim said it supports (boxd.shim.v1.Group, joining through Create).
 */
import type { Logger } from 'pino';
import { boxdShim, Code, isCode } from '@boxd/api';
import { TtrpcClient } from '@boxd/ttrpc';
import type { ShimContext } from './shim-process.js';

const hintKey = (ctx: ShimContext) => `${ctx.binary}\0${ctx.namespace}`;

export class ShimGroups {
  /** binary + namespace → the address the last `start` answered. */
  private readonly hints = new Map<string, string>();
  /** Shim binaries without boxd.shim.v1.Group: always `start`. */
  private readonly noJoin = new Set<string>();
  /** Addresses whose shim joins a task through its Create (JoinResponse.joins_on_create). */
  private readonly createJoins = new Set<string>();
  private readonly clients = new Map<string, Promise<TtrpcClient>>();

  constructor(private readonly logger: Logger) {}

  /** The shared connection to the shim at `address`, made on first use and dropped when it closes. */
  client(address: string): Promise<TtrpcClient> {
    const known = this.clients.get(address);
    if (known) return known;
    const connecting = TtrpcClient.connect(address).then(
      (client) => {
        client.onClose(() => {
          if (this.clients.get(address) === connecting) this.clients.delete(address);
          // Whatever serves this address next says again what it can.
          this.createJoins.delete(address);
        });
        return client;
      },
      (err: unknown) => {
        this.clients.delete(address);
        throw err;
      },
    );
    this.clients.set(address, connecting);
    return connecting;
  }

  /** A `start` for a task of ctx's binary and namespace answered `address`. */
  started(ctx: ShimContext, address: string): void {
    this.hints.set(hintKey(ctx), address);
  }

  /** The shim that joins a new task of ctx's binary and namespace through its Create, if one is known. */
  joinsOnCreate(ctx: ShimContext): string | undefined {
    const address = this.hints.get(hintKey(ctx));
    return address && this.createJoins.has(address) ? address : undefined;
  }

  /**
   * Asks the shim that took the namespace's last task to take this one too, saving a
   * `start` process; the shim decides by its own grouping rule. Its connection when it
   * took the task; undefined: run `start`.
   */
  async join(ctx: ShimContext): Promise<TtrpcClient | undefined> {
    const address = this.hints.get(hintKey(ctx));
    if (!address || this.noJoin.has(ctx.binary)) return undefined;
    const client = await this.client(address).catch(() => undefined);
    if (!client) {
      this.hints.delete(hintKey(ctx));
      return undefined;
    }
    try {
      const res = await client.service(boxdShim.GroupService).Join({ id: ctx.id, namespace: ctx.namespace, bundle: ctx.bundle }, { timeoutMs: 2000 });
      if (res.joinsOnCreate) this.createJoins.add(address);
      if (res.joined) return client;
    } catch (err) {
      if (isCode(err, Code.UNIMPLEMENTED)) this.noJoin.add(ctx.binary);
      else this.logger.debug({ err, task: ctx.id, address }, 'join failed; running start');
    }
    return undefined;
  }

  async close(): Promise<void> {
    const clients = await Promise.allSettled(this.clients.values());
    this.clients.clear();
    await Promise.all(clients.map((c) => (c.status === 'fulfilled' ? c.value.close().catch(() => undefined) : undefined)));
  }
}
