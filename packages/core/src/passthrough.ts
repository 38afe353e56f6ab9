/**
 * Unary calls the core only relays are passed through as bytes: no decode
 * and re-encode of, say, ten thousand images on their way from the metadata
 * plugin to the client. Methods with a hook still get the decoded messages,
 * decoded only for the hook.
 */
import { methodShape, type AnyMethod, type CallContext, type MessageCodec, type ServiceDefinition, type ServiceImplementation } from '@boxd/api';
import { forwardOptions, forwardService } from './forward.js';
import type { PluginEndpoint } from './endpoint.js';

const bytes: MessageCodec<Buffer> = {
  typeName: 'bytes',
  encode: (message) => message as unknown as Buffer,
  decode: (data) => Buffer.from(data.buffer, data.byteOffset, data.byteLength),
};

type Hook = (req: never, res: never, ctx: CallContext) => void | Promise<void>;

/** The same service with unary messages left as bytes: all of them, or those named. */
export function passthroughDefinition<S extends ServiceDefinition>(def: S, only?: ReadonlyArray<keyof S['methods'] & string>): S {
  const methods: Record<string, AnyMethod> = {};
  for (const [name, m] of Object.entries(def.methods)) {
    const raw = methodShape(m) === 'unary' && (!only || only.includes(name));
    methods[name] = raw ? { ...m, requestType: bytes, responseType: bytes } : m;
  }
  return { name: def.name, methods } as unknown as S;
}

/**
 * A public unary method answered by a plugin method taking and answering the very
 * same messages (Content.Info by ContentIndex.Info): its bytes are relayed as they are.
 */
export function bytesRelay(endpoint: () => PluginEndpoint, service: string, method: string) {
  return (req: Buffer, ctx: CallContext): Promise<Buffer> => endpoint().rawCall(service, method, req, forwardOptions(ctx));
}

/** `after` hooks run (on decoded messages) only while `hooksWanted` says so: decoding a container to publish an event nobody gets is waste. */
export function passthroughService<S extends ServiceDefinition>(
  def: S,
  endpoint: () => PluginEndpoint,
  after: Partial<Record<keyof S['methods'], Hook>> = {},
  hooksWanted: () => boolean = () => true,
): ServiceImplementation<S> {
  const typed = forwardService(def, () => endpoint().client(def));
  const impl: Record<string, unknown> = { ...typed };
  for (const [name, m] of Object.entries(def.methods)) {
    if (methodShape(m) !== 'unary') continue;
    const relay = bytesRelay(endpoint, def.name, name);
    const hook = (after as Record<string, Hook | undefined>)[name];
    impl[name] = !hook
      ? relay
      : async (req: Buffer, ctx: CallContext) => {
          const res = await relay(req, ctx);
          if (hooksWanted()) await hook(m.requestType.decode(req) as never, m.responseType.decode(res) as never, ctx);
          return res;
        };
  }
  return impl as ServiceImplementation<S>;
}
