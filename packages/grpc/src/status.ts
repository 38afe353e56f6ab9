import { Code, fromStatus, type BoxdError } from '@boxd/api';

/** A grpc-js error (ServiceError or status object) as a typed boxd error. */
export function fromGrpcError(err: unknown): BoxdError {
  const e = err as { code?: number; details?: string; message?: string };
  const code = typeof e?.code === 'number' ? e.code : Code.UNKNOWN;
  return fromStatus(code, e?.details ?? e?.message ?? String(err));
}
