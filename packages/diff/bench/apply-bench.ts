/**
 * Apply benchmark: the layers of a large image unpacked onto overlay
 * directories, ours against upstream containerd 1.6, in the same run and
 * reading the same blobs from the same content store (upstream's).
 *
 * - upstream: containerd's own Diff service Apply, layer after layer onto
 *   overlayfs snapshots (Prepare on the previous chain, Apply, Commit) — what
 *   `ctr images unpack` does, without the image/lease bookkeeping.
 * - ours: our diff plugin (its own process, 2 worker threads) applying every
 *   layer at once, each into its own overlay upper dir, reading the blobs
 *   from containerd's content service over gRPC.
 *
 * Both write to the same filesystem; `sync` runs (untimed) before each
 * measurement so neither pays for the other's writeback.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diff, leases, snapshots, content } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { writeBlob, type ContentClient } from '@boxd/diff';
import { largeImage, removeDir, spawnDaemon, startContainerd, tempDir, waitForSocket, type Daemon, type LargeImage } from '@boxd/test-utils';
import { TtrpcClient, createTtrpcClient } from '@boxd/ttrpc';

type BenchLayer = LargeImage['layers'][number];

const NS = { namespace: 'bench' };
const BIN = fileURLToPath(new URL('../bin.js', import.meta.url));
const CONTENT_STORE_BIN = fileURLToPath(new URL('../../../content-store/dist/bin.js', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

function descriptor(layer: BenchLayer) {
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size };
}

async function ingest(client: ContentClient, layer: BenchLayer): Promise<void> {
  const bytes = await readFile(layer.path);
  await writeBlob(client, { ref: `bench-${layer.digest}`, commit: () => ({ digest: layer.digest, size: BigInt(bytes.length), labels: { 'containerd.io/gc.root': 'bench' } }) }, (async function* () { yield bytes; })(), NS);
}

function chainIds(layers: BenchLayer[]): string[] {
  const out: string[] = [];
  for (const layer of layers) {
    const prev = out[out.length - 1];
    out.push(prev ? `sha256:${createHash('sha256').update(`${prev} ${layer.diffId}`).digest('hex')}` : layer.diffId);
  }
  return out;
}

async function upstreamUnpack(address: string, layers: BenchLayer[], round: number): Promise<number> {
  const s = createGrpcClient(snapshots.SnapshotsService, address);
  const d = createGrpcClient(diff.DiffService, address);
  const l = createGrpcClient(leases.LeasesService, address);
  // As ctr does: the snapshots live under a lease, so containerd's GC leaves them alone.
  const lease = `bench-${round}`;
  await l.Create({ id: lease }, NS);
  const opts = { ...NS, metadata: { 'containerd-lease': lease } };
  const chain = chainIds(layers).map((id) => `r${round}-${id}`);
  execFileSync('sync');
  const start = performance.now();
  for (const [i, layer] of layers.entries()) {
    const key = `extract-r${round}-${i}`;
    const mounts = (await s.Prepare({ snapshotter: 'overlayfs', key, parent: i > 0 ? chain[i - 1] : '' }, opts)).mounts;
    const res = await d.Apply({ diff: descriptor(layer), mounts }, opts);
    if (res.applied?.digest !== layer.diffId) throw new Error(`upstream applied ${res.applied?.digest}, want ${layer.diffId}`);
    await s.Commit({ snapshotter: 'overlayfs', name: chain[i], key }, opts);
  }
  const elapsed = performance.now() - start;
  await l.Delete({ id: lease, sync: true }, NS);
  s.close();
  d.close();
  l.close();
  return elapsed;
}

async function oursUnpack(pluginAddress: string, layers: BenchLayer[], work: string): Promise<number> {
  const d = createGrpcClient(diff.DiffService, pluginAddress);
  const uppers = layers.map((_, i) => join(work, `${i}`, 'fs'));
  for (const [i] of layers.entries()) {
    await mkdir(uppers[i]!, { recursive: true });
    await mkdir(join(work, `${i}`, 'work'), { recursive: true });
  }
  execFileSync('sync');
  const start = performance.now();
  await Promise.all(
    layers.map(async (layer, i) => {
      const mounts =
        i === 0
          ? [{ type: 'bind', source: uppers[0]!, options: ['rbind', 'rw'] }]
          : [{ type: 'overlay', source: 'overlay', options: [`workdir=${join(work, `${i}`, 'work')}`, `upperdir=${uppers[i]}`, `lowerdir=${uppers.slice(0, i).reverse().join(':')}`] }];
      const res = await d.Apply({ diff: descriptor(layer), mounts }, NS);
      if (res.applied?.digest !== layer.diffId) throw new Error(`ours applied ${res.applied?.digest}, want ${layer.diffId}`);
    }),
  );
  const elapsed = performance.now() - start;
  d.close();
  return elapsed;
}

type Filesystem = 'tmpfs' | 'disk';

const TICKS_PER_SECOND = 100;

/** CPU seconds a process (all its threads, and children it waited for) has used. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime are fields 14-17 of the whole line.
  return fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) / TICKS_PER_SECOND;
}

interface Measured {
  wall: number;
  cpu: number;
  /** CPU seconds per process, in the order the pids were given. */
  perProcess: number[];
}

async function measured(pids: number[], run: () => Promise<number>): Promise<Measured> {
  const before = await Promise.all(pids.map(cpuSeconds));
  const wall = await run();
  const after = await Promise.all(pids.map(cpuSeconds));
  const perProcess = after.map((a, i) => a - before[i]!);
  return { wall, cpu: perProcess.reduce((sum, c) => sum + c, 0), perProcess };
}

interface OursSetup {
  label: string;
  /** gRPC socket of the diff plugin. */
  address: string;
  /** Processes whose CPU counts for it: the blob source and the plugin. */
  pids: number[];
}

/** Our diff plugin as its own process, reading blobs from `contentAddress`. */
async function startOurDiff(dir: string, name: string, contentAddress: string, transport: 'grpc' | 'ttrpc'): Promise<{ address: string; daemon: Daemon }> {
  const address = join(dir, `${name}.sock`);
  const config = join(dir, `${name}.toml`);
  const workers = process.env.BENCH_WORKERS ? `workers = ${process.env.BENCH_WORKERS}\n` : '';
  await writeFile(config, `content_address = ${JSON.stringify(contentAddress)}\ncontent_transport = "${transport}"\n${workers}`);
  const nodeArgs = process.env.BENCH_PLUGIN_NODE_ARGS ? process.env.BENCH_PLUGIN_NODE_ARGS.split(' ') : [];
  const daemon = spawnDaemon(process.execPath, [...nodeArgs, BIN, '--grpc-address', address, '--root', join(dir, `${name}-root`), '--config', config, '--log-level', 'warn'], join(dir, `${name}.log`));
  await waitForSocket(address, 15_000);
  return { address, daemon };
}

/** Our content-store plugin on ttrpc, holding the same blobs (the all-boxd setup). */
async function startOurContent(dir: string, layers: BenchLayer[]): Promise<{ address: string; daemon: Daemon } | undefined> {
  if (!existsSync(CONTENT_STORE_BIN)) return undefined;
  const address = join(dir, 'content.sock');
  const daemon = spawnDaemon(process.execPath, [CONTENT_STORE_BIN, '--address', address, '--root', join(dir, 'content-root'), '--log-level', 'warn'], join(dir, 'content.log'));
  await waitForSocket(address, 15_000);
  const connection = await TtrpcClient.connect(address);
  const client = createTtrpcClient(content.ContentService, connection);
  for (const layer of layers) await ingest(client, layer);
  await connection.close();
  return { address, daemon };
}

/** One measurement with containerd's root and our upper dirs on `fs` (both on the same one). */
async function measure(layers: BenchLayer[], fs: Filesystem, rounds: number, uncompressed: number): Promise<void> {
  const dir = await tempDir('bx-dbench-');
  if (fs === 'tmpfs') execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8g', 'tmpfs', dir]);
  const daemons: Daemon[] = [];
  const cd = await startContainerd({ dir: join(dir, 'cd'), logLevel: 'warn' });
  const contentClient = createGrpcClient(content.ContentService, cd.address);
  try {
    for (const layer of layers) await ingest(contentClient, layer);
    const setups: OursSetup[] = [];
    const viaContainerd = await startOurDiff(dir, 'diff-cd', cd.address, 'grpc');
    daemons.push(viaContainerd.daemon);
    setups.push({ label: "ours (blobs from containerd's content service, gRPC)", address: viaContainerd.address, pids: [cd.pid, viaContainerd.daemon.pid] });
    const ourContent = await startOurContent(dir, layers);
    if (ourContent) {
      daemons.push(ourContent.daemon);
      const viaBoxd = await startOurDiff(dir, 'diff-boxd', ourContent.address, 'ttrpc');
      daemons.push(viaBoxd.daemon);
      setups.push({ label: 'ours (blobs from the boxd content store, ttrpc)', address: viaBoxd.address, pids: [ourContent.daemon.pid, viaBoxd.daemon.pid] });
    }
    const show = (m: Measured) => `${(m.wall / 1000).toFixed(2)} s wall, ${m.cpu.toFixed(2)} s cpu (${m.perProcess.map((c) => c.toFixed(2)).join(' + ')})`;
    const best = new Map<string, number>();
    const keep = (label: string, m: Measured) => best.set(label, Math.min(best.get(label) ?? Infinity, m.wall));
    for (let round = 0; round < rounds; round++) {
      const upstream = await measured([cd.pid], () => upstreamUnpack(cd.address, layers, round));
      keep('upstream', upstream);
      console.log(`[${fs}] round ${round + 1}: upstream containerd: ${show(upstream)}`);
      for (const [i, setup] of setups.entries()) {
        const work = join(dir, `ours-${round}-${i}`);
        const ours = await measured(setup.pids, () => oursUnpack(setup.address, layers, work));
        await rm(work, { recursive: true, force: true });
        keep(setup.label, ours);
        console.log(`[${fs}] round ${round + 1}: ${setup.label}: ${show(ours)}, ratio ${(ours.wall / upstream.wall).toFixed(2)}`);
      }
    }
    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    const upstreamBest = best.get('upstream')!;
    console.log(`[${fs}] best of ${rounds}: upstream ${(upstreamBest / 1000).toFixed(2)} s (${(uncompressed / upstreamBest / 1e3).toFixed(0)} MB/s); load average ${load}`);
    for (const setup of setups) {
      const ours = best.get(setup.label)!;
      console.log(`[${fs}]   ${setup.label}: ${(ours / 1000).toFixed(2)} s (${(uncompressed / ours / 1e3).toFixed(0)} MB/s), ours/upstream = ${(ours / upstreamBest).toFixed(2)} (target <= 0.60)`);
    }
  } finally {
    contentClient.close();
    for (const daemon of daemons.reverse()) await daemon.stop(5_000);
    await cd.stop();
    await removeDir(dir);
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const { layers } = await largeImage();
  const compressed = layers.reduce((a, l) => a + l.size, 0);
  const uncompressed = layers.reduce((a, l) => a + l.uncompressed, 0);
  const files = layers.reduce((a, l) => a + l.files, 0);
  console.log(`image: ${layers.length} gzip layers, ${(compressed / 1e6).toFixed(0)} MB compressed, ${(uncompressed / 1e6).toFixed(0)} MB uncompressed, ${files} files (ready in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const filesystems = (process.env.BENCH_FS ?? 'tmpfs,disk').split(',') as Filesystem[];
  for (const fs of filesystems) await measure(layers, fs, fs === 'disk' ? 1 : ROUNDS, uncompressed);
}

await main();
