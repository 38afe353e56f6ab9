/**
 * Message codecs backed by protobufjs reflection over the generated
 * descriptor. Types are resolved on first use so importing the package does
 * not pay for services a process never touches.
 */
import protobuf from 'protobufjs/light.js';
import Long from 'long';
import { descriptor } from './generated/descriptor.js';
import type { MessageCodec, MethodDefinition, Init } from './service.js';

// protobufjs decodes 64-bit fields as Long only when it can find the library.
protobuf.util.Long = Long;
protobuf.configure();

let root: protobuf.Root | undefined;

export function protoRoot(): protobuf.Root {
  root ??= protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
  return root;
}

const TO_OBJECT: protobuf.IConversionOptions = { defaults: true, arrays: true, objects: true };

class ReflectedCodec<T> implements MessageCodec<T> {
  private type?: protobuf.Type;
  constructor(readonly typeName: string) {}

  private resolve(): protobuf.Type {
    this.type ??= protoRoot().lookupType(this.typeName);
    return this.type;
  }

  encode(message: Init<T>): Uint8Array {
    return this.resolve().encode(message as Record<string, unknown>).finish();
  }

  decode(bytes: Uint8Array): T {
    const type = this.resolve();
    // Plain objects with every default filled in: safe to spread and compare.
    return type.toObject(type.decode(bytes), TO_OBJECT) as T;
  }
}

export function codec<T>(typeName: string): MessageCodec<T> {
  return new ReflectedCodec<T>(typeName);
}

export function method<Req, Res, CS extends boolean, SS extends boolean>(
  service: string,
  name: string,
  requestType: MessageCodec<Req>,
  responseType: MessageCodec<Res>,
  requestStream: CS,
  responseStream: SS,
): MethodDefinition<Req, Res, CS, SS> {
  return { name, path: `/${service}/${name}`, requestType, responseType, requestStream, responseStream };
}

/** Codec for any message type in the descriptor, by fully qualified name. */
export function codecFor<T = Record<string, unknown>>(typeName: string): MessageCodec<T> {
  protoRoot().lookupType(typeName);
  return codec<T>(typeName);
}
