/** Passing a public call on to a plugin with the caller's namespace, lease and deadline. */
import {
  FailedPreconditionError,
  LEASE_HEADER_GRPC,
  leaseOf,
  methodShape,
  namespaceOf,
  type CallContext,
  type CallOptions,
  type ServiceClient,
  type ServiceDefinition,
  type ServiceImplementation,
} from '@boxd/api';

export function forwardOptions(ctx: CallContext): CallOptions {
  const lease = leaseOf(ctx);
  return {
    namespace: namespaceOf(ctx),
    metadata: lease ? { [LEASE_HEADER_GRPC]: lease } : undefined,
    signal: ctx.signal,
    timeoutMs: ctx.deadline === undefined ? undefined : Math.max(1, ctx.deadline - Date.now()),
  };
}

/** For namespace-less backends (content store, snapshotters, differ): only deadline and cancellation travel. */
export function plainOptions(ctx: CallContext): CallOptions {
  const { signal, timeoutMs } = forwardOptions(ctx);
  return { signal, timeoutMs };
}

export function requireNamespace(ctx: CallContext): string {
  const ns = namespaceOf(ctx);
  if (!ns) throw new FailedPreconditionError('namespace is required');
  return ns;
}

type AnyFn = (...args: unknown[]) => unknown;

/**
 * A service implementation that forwards every method to `client()`;
 * `after` runs once a unary call succeeded (to publish events).
 */
export function forwardService<S extends ServiceDefinition>(
  def: S,
  client: () => ServiceClient<S>,
  after: Partial<Record<keyof S['methods'], (req: never, res: never, ctx: CallContext) => void | Promise<void>>> = {},
): ServiceImplementation<S> {
  const impl: Record<string, unknown> = {};
  for (const [name, m] of Object.entries(def.methods)) {
    const call = (...args: unknown[]) => ((client() as Record<string, AnyFn>)[name] as AnyFn)(...args);
    const hook = (after as Record<string, AnyFn | undefined>)[name];
    switch (methodShape(m)) {
      case 'unary':
        impl[name] = async (req: unknown, ctx: CallContext) => {
          const res = await call(req, forwardOptions(ctx));
          await hook?.(req, res, ctx);
          return res;
        };
        break;
      case 'server-stream':
        impl[name] = (req: unknown, ctx: CallContext) => call(req, forwardOptions(ctx)) as AsyncIterable<unknown>;
        break;
      default:
        impl[name] = async function* (requests: AsyncIterable<unknown>, ctx: CallContext) {
          const stream = call(forwardOptions(ctx)) as { send(m: unknown): Promise<void>; end(): Promise<void>; recv(): Promise<unknown>; cancel(): void };
          const pump = (async () => {
            for await (const r of requests) await stream.send(r);
            await stream.end();
          })();
          pump.catch(() => stream.cancel());
          for (;;) {
            const res = await stream.recv();
            if (res === undefined) break;
            yield res;
          }
          await pump;
        };
    }
  }
  return impl as ServiceImplementation<S>;
}
