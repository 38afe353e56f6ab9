/** Wraps a service implementation so every call is counted, timed and its errors logged. */
import { errorCode, methodShape, type ServiceDefinition, type ServiceImplementation } from '@boxd/api';
import type { CoreMetrics } from './metrics.js';

type AnyFn = (...args: unknown[]) => unknown;

export function instrument<S extends ServiceDefinition>(def: S, impl: ServiceImplementation<S>, metrics: CoreMetrics): ServiceImplementation<S> {
  const out: Record<string, unknown> = {};
  const service = def.name;
  for (const [name, m] of Object.entries(def.methods)) {
    const handler = (impl as Record<string, AnyFn>)[name];
    const streaming = methodShape(m) === 'server-stream' || methodShape(m) === 'bidi';
    out[name] = streaming
      ? async function* (...args: unknown[]) {
          const done = metrics.observe(service, name);
          try {
            yield* handler(...args) as AsyncIterable<unknown>;
            done();
          } catch (err) {
            done(errorCode(err));
            throw err;
          }
        }
      : async (...args: unknown[]) => {
          const done = metrics.observe(service, name);
          try {
            const res = await handler(...args);
            done();
            return res;
          } catch (err) {
            done(errorCode(err));
            throw err;
          }
        };
  }
  return out as ServiceImplementation<S>;
}
