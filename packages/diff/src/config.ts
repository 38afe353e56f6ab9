/** The diff plugin's config table, validated once at start. */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '@boxd/api';

export interface StreamProcessorConfig {
  id: string;
  accepts: string[];
  returns: string;
  path: string;
  args: string[];
  env: string[];
}

export interface DiffConfig {
  /** Socket of the Content service the layers are read from and written to. */
  contentAddress?: string;
  contentTransport: 'ttrpc' | 'grpc';
  /** Namespace sent to the content store when the caller sent none. */
  contentNamespace?: string;
  /** Create block/char device nodes from layers (needs root). */
  allowDevices: boolean;
  /** Worker threads that run applies and diffs; 0 runs them on the main thread. */
  workers: number;
  zstdPath: string;
  /** Where temporary mount points are made. */
  tmpDir: string;
  streamProcessors: StreamProcessorConfig[];
  staging: StagingConfig;
}

/** Unpacking ahead (boxd.diff.v1.Staging). */
export interface StagingConfig {
  /** Where staged trees are made; on the snapshotters' filesystem, so a claim is a rename. */
  dir: string;
  /** How long a staged tree waits for its Apply before it is removed; 0 turns staging off. */
  ttlMs: number;
  /** Bound on the blob bytes staged and not yet claimed; further Stage calls are ignored. */
  maxBytes: number;
}

type Table = Record<string, unknown>;

// Long enough for the writes of a large import or pull to finish before its unpack claims the first layers.
const DEFAULT_STAGING_TTL_SECONDS = 300;
const DEFAULT_STAGING_MAX_BYTES = 4 * 1024 ** 3;

function optionalString(table: Table, key: string): string | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidArgumentError(`diff config: ${key} must be a string`);
  return value;
}

function stringList(table: Table, key: string, where: string): string[] {
  const value = table[key] ?? [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new InvalidArgumentError(`diff config: ${where}.${key} must be a list of strings`);
  }
  return value as string[];
}

function nonNegative(raw: Table, key: string, fallback: number): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`diff config: ${key} must be a non-negative number`);
  return value;
}

function streamProcessors(value: unknown): StreamProcessorConfig[] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError('diff config: stream_processors must be a table of processors');
  }
  return Object.entries(value as Table).map(([id, raw]) => {
    const where = `stream_processors."${id}"`;
    if (typeof raw !== 'object' || raw === null) throw new InvalidArgumentError(`diff config: ${where} must be a table`);
    const table = raw as Table;
    const returns = optionalString(table, 'returns');
    const path = optionalString(table, 'path');
    if (!returns || !path) throw new InvalidArgumentError(`diff config: ${where} needs "returns" and "path"`);
    return { id, accepts: stringList(table, 'accepts', where), returns, path, args: stringList(table, 'args', where), env: stringList(table, 'env', where) };
  });
}

export function parseDiffConfig(raw: Table, root: string): DiffConfig {
  const transport = optionalString(raw, 'content_transport') ?? 'ttrpc';
  if (transport !== 'ttrpc' && transport !== 'grpc') {
    throw new InvalidArgumentError(`diff config: content_transport must be "ttrpc" or "grpc", got "${transport}"`);
  }
  const workers = raw.workers ?? Math.min(4, availableParallelism());
  if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 0) {
    throw new InvalidArgumentError('diff config: workers must be a non-negative integer');
  }
  const allowDevices = raw.allow_devices ?? false;
  if (typeof allowDevices !== 'boolean') throw new InvalidArgumentError('diff config: allow_devices must be a boolean');
  return {
    contentAddress: optionalString(raw, 'content_address'),
    contentTransport: transport,
    contentNamespace: optionalString(raw, 'content_namespace'),
    allowDevices,
    workers,
    zstdPath: optionalString(raw, 'zstd_path') ?? 'zstd',
    tmpDir: optionalString(raw, 'tmp_dir') ?? join(root, 'tmp'),
    streamProcessors: streamProcessors(raw.stream_processors),
    staging: {
      dir: optionalString(raw, 'staging_dir') ?? join(root, 'staging'),
      ttlMs: nonNegative(raw, 'staging_ttl_seconds', DEFAULT_STAGING_TTL_SECONDS) * 1000,
      maxBytes: nonNegative(raw, 'staging_max_bytes', DEFAULT_STAGING_MAX_BYTES),
    },
  };
}
