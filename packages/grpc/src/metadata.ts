import * as grpc from '@grpc/grpc-js';
import { NAMESPACE_HEADER_GRPC, type CallOptions } from '@boxd/api';

export function toGrpcMetadata(options: CallOptions | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [key, value] of Object.entries(options?.metadata ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) md.add(key.toLowerCase(), v);
  }
  if (options?.namespace) md.set(NAMESPACE_HEADER_GRPC, options.namespace);
  return md;
}

export function callOptions(options: CallOptions | undefined): grpc.CallOptions {
  return options?.timeoutMs !== undefined ? { deadline: Date.now() + options.timeoutMs } : {};
}
