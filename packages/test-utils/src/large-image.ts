/**
 * A large, deterministic OCI image for benchmarks: several gzip layers of
 * pseudo-random and text files (later layers rewrite and delete some earlier
 * files), packed as an oci-archive. Generated once, cached on disk.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { runOk } from './exec.js';

export interface LargeImage {
  archive: string;
  ref: string;
  /** Each gzip layer: its blob file, digests, and what it unpacks to. */
  layers: Array<{ path: string; digest: string; size: number; diffId: string; files: number; uncompressed: number }>;
  compressedBytes: number;
  files: number;
}

export interface LargeImageOptions {
  layers?: number;
  filesPerLayer?: number;
  cacheRoot?: string;
}

const WORDS = 'the quick brown fox jumps over lazy dog container layer image overlay snapshot content digest whiteout kernel mount'.split(' ');

function pseudoRandom(label: string, length: number): Buffer {
  const key = createHash('sha256').update(label).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function text(seed: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (let i = 0; at < length; i++) at += out.write(WORDS[seed[i % seed.length]! % WORDS.length]! + (i % 13 === 12 ? '\n' : ' '), at, 'ascii');
  return out;
}

/** A ustar header: enough for plain files and directories. */
function header(name: string, type: '0' | '5', size: number, mode: number, mtime: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (value: string, offset: number, length: number) => h.write(value, offset, length, 'ascii');
  const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, '0');
  put(name, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(mtime, 12), 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put('ustar\x0000', 257, 8);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${octal(sum, 7)}\x00`, 148, 8);
  return h;
}

function fileSize(r: number, r2: number): number {
  if (r < 0.8) return 256 + Math.floor(r2 * 7_936);
  if (r < 0.98) return 8_192 + Math.floor(r2 * 122_880);
  return 262_144 + Math.floor(r2 * 2_359_296);
}

function* layerTar(layer: number, files: number): Generator<Buffer> {
  const mtime = 1_700_000_000 + layer;
  const dirs = new Set<string>();
  function* dir(name: string): Generator<Buffer> {
    if (dirs.has(name)) return;
    dirs.add(name);
    yield header(`${name}/`, '5', 0, 0o755, mtime);
  }
  yield* dir('usr');
  yield* dir(`usr/layer${layer}`);
  const pick = pseudoRandom(`pick-${layer}`, files * 3);
  for (let i = 0; i < files; i++) {
    const rewrite = layer > 0 && i % 10 === 0;
    const d = rewrite ? `usr/layer0/d${i % 60}` : `usr/layer${layer}/d${i % 60}`;
    if (rewrite) yield* dir('usr/layer0');
    yield* dir(d);
    const size = fileSize(pick[i * 3]! / 256, pick[i * 3 + 1]! / 256);
    const body = pick[i * 3 + 2]! < 77 ? text(pseudoRandom(`${layer}-${i}`, 64), size) : pseudoRandom(`${layer}-${i}`, size);
    yield header(`${d}/f${i}`, '0', size, 0o644, mtime);
    yield body;
    if (size % 512) yield Buffer.alloc(512 - (size % 512));
  }
  if (layer > 0) {
    for (let i = 1; i < 200; i += 7) {
      if (i % 10 === 0) continue;
      const d = `usr/layer${layer - 1}/d${i % 60}`;
      yield* dir(`usr/layer${layer - 1}`);
      yield* dir(d);
      yield header(`${d}/.wh.f${i}`, '0', 0, 0, mtime);
    }
  }
  yield Buffer.alloc(1024);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function writeBlob(layout: string, data: Buffer | string): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(data);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(join(layout, 'blobs/sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** The benchmark image as an oci-archive, built into `cacheRoot` on first use. */
export async function largeImage(options: LargeImageOptions = {}): Promise<LargeImage> {
  const layerCount = options.layers ?? 4;
  const filesPerLayer = options.filesPerLayer ?? 3000;
  const dir = join(options.cacheRoot ?? '/tmp/boxd-bench-cache', `large-image-v2-${layerCount}x${filesPerLayer}`);
  const metaPath = join(dir, 'image.json');
  if (existsSync(metaPath)) return JSON.parse(await readFile(metaPath, 'utf8')) as LargeImage;
  await rm(dir, { recursive: true, force: true });
  const layout = join(dir, 'layout');
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  const layers: LargeImage['layers'] = [];
  for (let l = 0; l < layerCount; l++) {
    const tmp = join(dir, `layer${l}.tmp`);
    const diff = createHash('sha256');
    let uncompressed = 0;
    const chunks = (function* () {
      for (const c of layerTar(l, filesPerLayer)) {
        diff.update(c);
        uncompressed += c.length;
        yield c;
      }
    })();
    await pipeline(chunks, createGzip({ level: 1 }), createWriteStream(tmp));
    const digest = await sha256File(tmp);
    const path = join(layout, 'blobs/sha256', digest.slice(7));
    await rename(tmp, path);
    layers.push({ path, digest, size: (await stat(path)).size, diffId: `sha256:${diff.digest('hex')}`, files: filesPerLayer, uncompressed });
  }
  const config = await writeBlob(
    layout,
    JSON.stringify({ architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }),
  );
  const manifest = await writeBlob(
    layout,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }),
  );
  const ref = 'docker.io/library/large:latest';
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const archive = join(dir, 'large.tar');
  await runOk('tar', ['-cf', archive, '-C', layout, 'oci-layout', 'index.json', 'blobs']);
  const image: LargeImage = { archive, ref, layers, compressedBytes: layers.reduce((a, l) => a + l.size, 0), files: layers.reduce((a, l) => a + l.files, 0) };
  await writeFile(metaPath, JSON.stringify(image));
  return image;
}
