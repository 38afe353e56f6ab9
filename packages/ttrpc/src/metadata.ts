/** CallOptions metadata as it goes on the wire. */
import { NAMESPACE_HEADER_TTRPC, type CallOptions } from '@boxd/api';
import type { KeyValue } from './envelope.js';

/**
 * Lowercased keys (Go's MD helpers lowercase too), one entry per value, and
 * the namespace under containerd's ttrpc key, overriding any explicit one.
 */
export function wireMetadata(options: Pick<CallOptions, 'metadata' | 'namespace'>): KeyValue[] | undefined {
  const { metadata, namespace } = options;
  if (!metadata && !namespace) return undefined;
  const out: KeyValue[] = [];
  if (metadata) {
    for (const [rawKey, values] of Object.entries(metadata)) {
      const key = rawKey.toLowerCase();
      if (namespace && key === NAMESPACE_HEADER_TTRPC) continue;
      if (typeof values === 'string') out.push({ key, value: values });
      else for (const value of values) out.push({ key, value });
    }
  }
  if (namespace) out.push({ key: NAMESPACE_HEADER_TTRPC, value: namespace });
  return out;
}
