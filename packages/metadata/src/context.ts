import { FailedPreconditionError, leaseOf, namespaceOf, validateIdentifier, type CallContext } from '@boxd/api';

/** The namespace of a namespaced call; upstream's exact errors when it is missing or malformed. */
export function requireNamespace(ctx: Pick<CallContext, 'metadata'>): string {
  const ns = namespaceOf(ctx);
  if (!ns) throw new FailedPreconditionError('namespace is required');
  return validateIdentifier(ns);
}

export interface Scope {
  ns: string;
  lease?: string;
}

export function scopeOf(ctx: Pick<CallContext, 'metadata'>): Scope {
  return { ns: requireNamespace(ctx), lease: leaseOf(ctx) };
}
