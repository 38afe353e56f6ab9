/**
 * Turns a layer blob into a plain tar stream: configured stream processors
 * first (as containerd's [stream_processors]), then built-in decompression.
 */
import { createGunzip } from 'node:zlib';
import { InvalidArgumentError, protobuf, UnimplementedError } from '@boxd/api';
import type { StreamProcessorConfig } from '../config.js';
import { compressionOf, MEDIA_TYPE_TAR, sniffCompression, type Compression } from '../media-types.js';
import { peek, throughProcess, throughTransform, type ByteStream } from '../streams.js';
import { gunzipStream, isalGunzip } from './isal-gunzip.js';

export interface DecodeOptions {
  processors: StreamProcessorConfig[];
  payloads: Record<string, protobuf.Any>;
  zstdPath: string;
}

// A processor chain longer than this is a configuration loop.
const MAX_STEPS = 8;

function corrupt(what: string) {
  return (err: Error | string) => new InvalidArgumentError(`${what}: ${typeof err === 'string' ? err : err.message}`);
}

/** Built-in decompression (no stream processors). */
export function decompress(source: ByteStream, compression: 'none' | 'gzip' | 'zstd', options: Pick<DecodeOptions, 'zstdPath'>): ByteStream {
  switch (compression) {
    case 'none':
      return source;
    case 'gzip': {
      const isal = isalGunzip();
      return isal ? gunzipStream(isal, source) : throughTransform(source, createGunzip({ chunkSize: 1 << 20 }), corrupt('gzip'));
    }
    case 'zstd':
      return throughProcess(source, { path: options.zstdPath, args: ['-dcq'], label: 'zstd' }, corrupt('zstd'));
  }
}

async function builtIn(source: ByteStream, compression: Compression, options: DecodeOptions): Promise<ByteStream> {
  if (compression !== 'sniff') return decompress(source, compression, options);
  const { head, stream } = await peek(source, 4);
  return decompress(stream, sniffCompression(head), options);
}

function runProcessor(source: ByteStream, processor: StreamProcessorConfig, mediaType: string, options: DecodeOptions): ByteStream {
  const payload = options.payloads[processor.id];
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const entry of [...processor.env, `STREAM_PROCESSOR_MEDIATYPE=${mediaType}`]) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return throughProcess(
    source,
    {
      path: processor.path,
      args: processor.args,
      env,
      fd3: payload ? protobuf.Any.encode(payload) : undefined,
      label: `stream processor ${processor.id}`,
    },
    (message) => new InvalidArgumentError(message),
  );
}

/** The layer as an uncompressed tar stream. */
export async function decodeLayer(source: ByteStream, mediaType: string, options: DecodeOptions): Promise<ByteStream> {
  let stream = source;
  let type = mediaType;
  for (let step = 0; step < MAX_STEPS; step++) {
    if (type === MEDIA_TYPE_TAR) return stream;
    const processor = options.processors.find((p) => p.accepts.includes(type));
    if (processor) {
      stream = runProcessor(stream, processor, type, options);
      type = processor.returns;
      continue;
    }
    const compression = compressionOf(type);
    if (compression === undefined) throw new UnimplementedError(`failed to get stream processor for ${type}: no processor for media type`);
    return builtIn(stream, compression, options);
  }
  throw new InvalidArgumentError(`stream processors for ${mediaType} do not reach ${MEDIA_TYPE_TAR} within ${MAX_STEPS} steps`);
}
