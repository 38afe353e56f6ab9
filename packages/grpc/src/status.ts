import * as grpc from '@grpc/grpc-js';
import { Code, errorCode, fromStatus, toWireMessage, type BoxdError } from '@boxd/api';

/** A thrown value as grpc-js wants it for a status: code + details. */
export function toGrpcStatus(err: unknown): Partial<grpc.StatusObject> & { code: number; details: string } {
  return { code: errorCode(err), details: toWireMessage(err), metadata: new grpc.Metadata() };
}

/** A grpc-js error (ServiceError or status object) as a typed boxd error. */
export function fromGrpcError(err: unknown): BoxdError {
  const e = err as { code?: number; details?: string; message?: string };
  const code = typeof e?.code === 'number' ? e.code : Code.UNKNOWN;
  return fromStatus(code, e?.details ?? e?.message ?? String(err));
}
