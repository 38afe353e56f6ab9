/**
 * The plugin's config (its `[metadata]` table, or the whole file):
 *
 *   content_address = "/run/boxd/content.sock"
 *   transport = "ttrpc"            # or "grpc"; default for every backend
 *   gc_delay_ms = 500              # quiet time after the last deletion → collection
 *   gc_max_delay_ms = 5000         # at the latest this long after the first
 *   gc_startup_delay_ms = 100      # first collection after start; -1 disables
 *   ingest_expiry_ms = 86400000    # ingests opened without a lease
 *   retired_grace_ms = 600000      # committed active snapshots awaiting the backend commit
 *   key_reservation_ttl_ms = 3600000  # backend key sequence numbers the core holds
 *   [snapshotters.overlayfs]
 *   address = "/run/boxd/overlay.sock"
 *   transport = "grpc"
 */
import { InvalidArgumentError } from '@boxd/api';
import type { PluginConfig } from '@boxd/plugin-kit';
import type { BackendAddress, Transport } from './backends/clients.js';

export interface MetadataConfig {
  content?: BackendAddress;
  snapshotters: Record<string, BackendAddress>;
  gcDelayMs: number;
  gcMaxDelayMs: number;
  gcStartupDelayMs: number;
  ingestExpiryMs: number;
  retiredGraceMs: number;
  keyReservationTtlMs: number;
}

export function parseConfig(raw: PluginConfig): MetadataConfig {
  const transport = transportOf(raw.transport, 'transport') ?? 'ttrpc';
  const contentAddress = stringOf(raw.content_address, 'content_address');
  const snapshotters: Record<string, BackendAddress> = {};
  const table = raw.snapshotters ?? {};
  if (typeof table !== 'object' || Array.isArray(table)) throw new InvalidArgumentError('config: snapshotters must be a table');
  for (const [name, entry] of Object.entries(table as Record<string, unknown>)) {
    const section = (entry ?? {}) as Record<string, unknown>;
    const address = stringOf(section.address, `snapshotters.${name}.address`);
    if (!address) throw new InvalidArgumentError(`config: snapshotters.${name}.address is required`);
    snapshotters[name] = { address, transport: transportOf(section.transport, `snapshotters.${name}.transport`) ?? transport };
  }
  return {
    content: contentAddress ? { address: contentAddress, transport: transportOf(raw.content_transport, 'content_transport') ?? transport } : undefined,
    snapshotters,
    gcDelayMs: numberOf(raw.gc_delay_ms, 'gc_delay_ms') ?? 500,
    gcMaxDelayMs: numberOf(raw.gc_max_delay_ms, 'gc_max_delay_ms') ?? 5000,
    gcStartupDelayMs: numberOf(raw.gc_startup_delay_ms, 'gc_startup_delay_ms') ?? 100,
    ingestExpiryMs: numberOf(raw.ingest_expiry_ms, 'ingest_expiry_ms') ?? 24 * 3600 * 1000,
    retiredGraceMs: numberOf(raw.retired_grace_ms, 'retired_grace_ms') ?? 10 * 60 * 1000,
    keyReservationTtlMs: numberOf(raw.key_reservation_ttl_ms, 'key_reservation_ttl_ms') ?? 3600 * 1000,
  };
}

function stringOf(value: unknown, key: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new InvalidArgumentError(`config: ${key} must be a string`);
  return value;
}

function numberOf(value: unknown, key: string): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new InvalidArgumentError(`config: ${key} must be a number`);
  return n;
}

function transportOf(value: unknown, key: string): Transport | undefined {
  if (value === undefined) return undefined;
  if (value !== 'ttrpc' && value !== 'grpc') throw new InvalidArgumentError(`config: ${key} must be "ttrpc" or "grpc"`);
  return value;
}
