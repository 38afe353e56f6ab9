/**
 * A large, deterministic test image for the apply benchmark: several gzip
 * layers of pseudo-random and text files (some later layers overwrite and
 * delete earlier files), generated once and cached.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { encodeHeader } from '@boxd/diff';

export interface BenchLayer {
  path: string;
  digest: string;
  size: number;
  diffId: string;
  files: number;
  uncompressed: number;
}

export const LAYERS = 4;
export const FILES_PER_LAYER = 3000;
const VERSION = 'v2';
const WORDS = 'the quick brown fox jumps over lazy dog container layer image overlay snapshot content digest whiteout kernel mount'.split(' ');

/** Deterministic pseudo-random bytes: AES-CTR over zeros, keyed by a label. */
function randomBytes(label: string, length: number): Buffer {
  const key = createHash('sha256').update(label).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(length));
}

function textBytes(seed: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (let i = 0; at < length; i++) {
    const word = WORDS[seed[i % seed.length]! % WORDS.length]! + (i % 13 === 12 ? '\n' : ' ');
    at += out.write(word, at, 'ascii');
  }
  return out;
}

function fileSize(r: number, r2: number): number {
  if (r < 0.8) return 256 + Math.floor(r2 * 7_936);
  if (r < 0.98) return 8_192 + Math.floor(r2 * 122_880);
  return 262_144 + Math.floor(r2 * 2_359_296);
}

/** The tar bytes of one layer, as a generator of chunks. */
function* layerTar(layer: number, stats: { files: number; bytes: number }): Generator<Buffer> {
  const mtime = 1_700_000_000 + layer;
  const dirs = new Set<string>();
  const dir = (name: string) => {
    if (dirs.has(name)) return [];
    dirs.add(name);
    return [encodeHeader({ name: `${name}/`, type: '5', mode: 0o755, uid: 0, gid: 0, size: 0n, mtime })];
  };
  yield* dir('usr');
  yield* dir(`usr/layer${layer}`);
  const pick = randomBytes(`pick-${layer}`, FILES_PER_LAYER * 3);
  for (let i = 0; i < FILES_PER_LAYER; i++) {
    // Later layers rewrite a slice of the first layer's files.
    const rewrite = layer > 0 && i % 10 === 0;
    const d = rewrite ? `usr/layer0/d${i % 60}` : `usr/layer${layer}/d${i % 60}`;
    if (rewrite) {
      yield* dir('usr/layer0');
    }
    yield* dir(d);
    const size = fileSize(pick[i * 3]! / 256, pick[i * 3 + 1]! / 256);
    const label = `${layer}-${i}`;
    const body = pick[i * 3 + 2]! < 77 ? textBytes(randomBytes(label, 64), size) : randomBytes(label, size);
    yield encodeHeader({ name: `${d}/f${i}`, type: '0', mode: 0o644, uid: 0, gid: 0, size: BigInt(size), mtime });
    yield body;
    const pad = (512 - (size % 512)) % 512;
    if (pad) yield Buffer.alloc(pad);
    stats.files++;
    stats.bytes += size;
  }
  if (layer > 0) {
    // A few whiteouts of the previous layer's files.
    for (let i = 1; i < 200; i += 7) {
      if (i % 10 === 0) continue; // rewritten by this very layer
      const d = `usr/layer${layer - 1}/d${i % 60}`;
      yield* dir(`usr/layer${layer - 1}`);
      yield* dir(d);
      yield encodeHeader({ name: `${d}/.wh.f${i}`, type: '0', mode: 0, uid: 0, gid: 0, size: 0n, mtime });
    }
  }
  yield Buffer.alloc(1024);
}

async function digestOf(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function writeLayer(dir: string, layer: number): Promise<BenchLayer> {
  const path = join(dir, `layer${layer}.tar.gz`);
  const stats = { files: 0, bytes: 0 };
  const diffHash = createHash('sha256');
  let uncompressed = 0;
  const chunks = (function* () {
    for (const chunk of layerTar(layer, stats)) {
      diffHash.update(chunk);
      uncompressed += chunk.length;
      yield chunk;
    }
  })();
  await pipeline(chunks, createGzip({ level: 6 }), createWriteStream(`${path}.tmp`));
  await rename(`${path}.tmp`, path);
  const data = await readFile(path);
  return { path, digest: await digestOf(path), size: data.length, diffId: `sha256:${diffHash.digest('hex')}`, files: stats.files, uncompressed };
}

/** The benchmark layers, generated into `cacheRoot` on first use. */
export async function benchImage(cacheRoot = '/tmp/boxd-bench-cache'): Promise<BenchLayer[]> {
  const dir = join(cacheRoot, `diff-apply-${VERSION}`);
  const manifest = join(dir, 'layers.json');
  if (existsSync(manifest)) return JSON.parse(await readFile(manifest, 'utf8')) as BenchLayer[];
  await mkdir(dir, { recursive: true });
  const layers: BenchLayer[] = [];
  for (let i = 0; i < LAYERS; i++) layers.push(await writeLayer(dir, i));
  await writeFile(manifest, JSON.stringify(layers, null, 2));
  return layers;
}
