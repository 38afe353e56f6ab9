/** Real processes for the tests: upstream containerd (content, snapshots, its own differ) and our diff plugin. */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { content, diff, snapshots } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { spawnDaemon, startContainerd, waitForSocket, type Containerd, type Daemon } from '@boxd/test-utils';
import { getAttributeSync, listAttributesSync } from '@napi-rs/xattr';
import { writeBlob } from '../src/content/write-blob.js';

export const NAMESPACE = 'default';
const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

export interface DiffPlugin {
  grpcAddress: string;
  ttrpcAddress: string;
  logPath: string;
  client: ReturnType<typeof createGrpcClient<typeof diff.DiffService>>;
  stop(): Promise<void>;
}

/** Our diff plugin as its own process, reading blobs from `contentAddress`. */
export async function startDiffPlugin(dir: string, config: string, logLevel = 'warn'): Promise<DiffPlugin> {
  const grpcAddress = join(dir, 'diff.sock');
  const ttrpcAddress = join(dir, 'diff.ttrpc');
  const configPath = join(dir, 'diff.toml');
  const logPath = join(dir, 'diff.log');
  await writeFile(configPath, config);
  const daemon: Daemon = spawnDaemon(process.execPath, [BIN, '--address', ttrpcAddress, '--grpc-address', grpcAddress, '--root', join(dir, 'diff-root'), '--config', configPath, '--log-level', logLevel], logPath);
  try {
    await waitForSocket(grpcAddress, 15_000);
  } catch (err) {
    await daemon.stop(0);
    throw new Error(`diff plugin did not start: ${(err as Error).message}\n${await readFile(logPath, 'utf8').catch(() => '')}`);
  }
  const client = createGrpcClient(diff.DiffService, grpcAddress);
  return {
    grpcAddress,
    ttrpcAddress,
    logPath,
    client,
    stop: async () => {
      client.close();
      await daemon.stop(5_000);
    },
  };
}

export interface Upstream {
  cd: Containerd;
  content: ReturnType<typeof createGrpcClient<typeof content.ContentService>>;
  snapshots: ReturnType<typeof createGrpcClient<typeof snapshots.SnapshotsService>>;
  diff: ReturnType<typeof createGrpcClient<typeof diff.DiffService>>;
  stop(): Promise<void>;
}

export async function startUpstream(dir: string): Promise<Upstream> {
  const cd = await startContainerd({ dir, logLevel: 'warn' });
  const contentClient = createGrpcClient(content.ContentService, cd.address);
  const snapshotsClient = createGrpcClient(snapshots.SnapshotsService, cd.address);
  const diffClient = createGrpcClient(diff.DiffService, cd.address);
  return {
    cd,
    content: contentClient,
    snapshots: snapshotsClient,
    diff: diffClient,
    stop: async () => {
      contentClient.close();
      snapshotsClient.close();
      diffClient.close();
      await cd.stop();
    },
  };
}

export function diffConfigFor(upstream: Upstream, extra = ''): string {
  return `content_address = ${JSON.stringify(upstream.cd.address)}\ncontent_transport = "grpc"\ncontent_namespace = "${NAMESPACE}"\nworkers = 2\n${extra}\n`;
}

export interface Blob {
  mediaType: string;
  digest: string;
  size: string;
}

/** Puts bytes into upstream's content store. */
export async function ingest(upstream: Upstream, bytes: Buffer, mediaType: string): Promise<Blob> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeBlob(
    upstream.content,
    { ref: `test-${digest}`, commit: () => ({ digest, size: BigInt(bytes.length), labels: { 'containerd.io/gc.root': 'test' } }) },
    (async function* () {
      yield bytes;
    })(),
    { namespace: NAMESPACE },
  );
  return { mediaType, digest, size: String(bytes.length) };
}

export async function readAll(upstream: Upstream, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of upstream.content.Read({ digest }, { namespace: NAMESPACE })) chunks.push(Buffer.from(chunk.data));
  return Buffer.concat(chunks);
}

export interface TreeEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime?: number;
  content?: string;
  /** Hard link count of regular files. */
  nlink?: number;
  link?: string;
  rdev?: number;
  xattrs: Record<string, string>;
}

function kind(stat: import('node:fs').Stats): string {
  if (stat.isFile()) return 'file';
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  if (stat.isCharacterDevice()) return 'char';
  if (stat.isBlockDevice()) return 'block';
  if (stat.isFIFO()) return 'fifo';
  return 'other';
}

/**
 * Everything that describes a tree: type, mode, owner, content hash, link
 * target, device, xattrs (overlay's private ones left out) and, unless
 * `mtimes` is false, whole-second mtimes.
 */
export async function snapshotTree(root: string, options: { mtimes?: boolean; dirMtimes?: boolean } = {}): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const stat = await lstat(full);
      const xattrs: Record<string, string> = {};
      for (const key of listAttributesSync(full).sort()) {
        if (key.startsWith('trusted.overlay.')) continue;
        xattrs[key] = getAttributeSync(full, key)?.toString('hex') ?? '';
      }
      const entry: TreeEntry = { type: kind(stat), mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, xattrs };
      if (options.mtimes !== false && (!stat.isDirectory() || options.dirMtimes !== false) && !stat.isSymbolicLink()) entry.mtime = Math.floor(stat.mtimeMs / 1000);
      if (stat.isFile()) {
        entry.content = createHash('sha256').update(await readFile(full)).digest('hex');
        entry.nlink = stat.nlink;
      }
      if (stat.isSymbolicLink()) entry.link = await readlink(full);
      if (stat.isCharacterDevice() || stat.isBlockDevice()) entry.rdev = stat.rdev;
      out[path] = entry;
      if (stat.isDirectory()) await walk(path);
    }
  }
  await walk('');
  return out;
}

/** A bind mount of `source`, as snapshotters hand them out. */
export function bindTo(source: string, options = ['rbind']) {
  return [{ type: 'bind', source, options }];
}

export interface TestEnv {
  upstream: Upstream;
  plugin: DiffPlugin;
  stop(): Promise<void>;
}

/** Upstream containerd (below dir/cd) and our diff plugin reading its content store. */
export async function startTestEnv(dir: string, extraConfig = '', logLevel = 'warn'): Promise<TestEnv> {
  const upstream = await startUpstream(join(dir, 'cd'));
  try {
    const plugin = await startDiffPlugin(dir, diffConfigFor(upstream, extraConfig), logLevel);
    return {
      upstream,
      plugin,
      stop: async () => {
        await plugin.stop();
        await upstream.stop();
      },
    };
  } catch (err) {
    await upstream.stop();
    throw err;
  }
}
