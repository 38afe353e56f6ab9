import protobuf from 'protobufjs';
import { method, type Init, type MessageCodec } from '@boxd/api';
import { PEER_SOURCE } from './go-peer.js';
import { join } from 'node:path';

export interface EchoRequest {
  text: string;
  failCode: number;
  failMessage: string;
}

export interface EchoResponse {
  text: string;
  metadata: { key: string; value: string }[];
  hasDeadline: boolean;
}

const root = protobuf.loadSync(join(PEER_SOURCE, 'echo.proto'));

function reflected<T>(typeName: string): MessageCodec<T> {
  const type = root.lookupType(typeName);
  return {
    typeName,
    encode: (message: Init<T>) => type.encode(type.fromObject(message as Record<string, unknown>)).finish(),
    decode: (bytes: Uint8Array) => type.toObject(type.decode(bytes), { defaults: true, arrays: true }) as T,
  };
}

const SERVICE = 'boxd.e2e.v1.Echo';

/** The Go peer's echo service (go/ttrpc-peer/echo.proto) as a @boxd/api service definition. */
export const EchoService = {
  name: SERVICE,
  methods: {
    Echo: method<EchoRequest, EchoResponse, false, false>(
      SERVICE,
      'Echo',
      reflected<EchoRequest>('boxd.e2e.v1.EchoRequest'),
      reflected<EchoResponse>('boxd.e2e.v1.EchoResponse'),
      false,
      false,
    ),
  },
} as const;
