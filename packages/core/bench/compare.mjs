// boxd vs upstream containerd, side by side through the same `ctr` commands,
// each on a fresh root in the same run. Prints times, memory and ratios.
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { images } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { buildTestImage, largeImage, removeDir, run, startBoxd, startContainerd, tempDir } from '@boxd/test-utils';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const DETACHED = Number(process.env.BENCH_DETACHED ?? 20);
const DETACHED_ROUNDS = Number(process.env.BENCH_DETACHED_ROUNDS ?? 3);
const IMAGES = Number(process.env.BENCH_IMAGES ?? 10_000);
const INGEST_MB = Number(process.env.BENCH_INGEST_MB ?? 300);
const INGEST_RUNS = Number(process.env.BENCH_INGEST_RUNS ?? 3);
const IMPORTS = Number(process.env.BENCH_IMPORTS ?? 3);
const only = new Set((process.env.BENCH_ONLY ?? 'import,memory,run,list').split(','));

async function pss(pids) {
  let kb = 0;
  for (const pid of pids) {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
    kb += Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  }
  return kb;
}

/** Pids of the processes whose argv passes `test`. */
async function processesWhere(test) {
  const out = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (test(argv)) out.push(Number(pid));
  }
  return out;
}

const processesMatching = (words) => processesWhere((argv) => words.every((w) => argv.join(' ').includes(w)));

const systems = {
  async boxd(dir) {
    const d = await startBoxd({ dir, logLevel: 'warn' });
    const plugins = async () => {
      const files = (await readdir(join(d.state, 'plugins'))).filter((f) => f.endsWith('.pid'));
      return Promise.all(files.map(async (f) => Number(await readFile(join(d.state, 'plugins', f), 'utf8'))));
    };
    return {
      ctr: (args) => d.ctr(args, { timeoutMs: 600_000 }),
      address: d.address,
      daemonPids: async () => [d.pid, ...(await plugins())],
      shimPids: () => processesMatching(['containerd-shim', `-address ${d.address}`]),
      stop: () => d.stop(),
    };
  },
  async containerd(dir) {
    const c = await startContainerd({ dir, logLevel: 'warn' });
    return {
      ctr: (args) => c.ctr(args, { timeoutMs: 600_000 }),
      address: c.address,
      daemonPids: async () => [c.pid],
      shimPids: () => processesMatching(['containerd-shim', `-address ${c.address}`]),
      stop: () => c.stop(),
    };
  },
};

async function timed(fn) {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

// A namespace of its own per run and system: runc keeps task state per namespace
// machine-wide, and the run phase has both systems up at once.
const NS = `bench${process.pid}`;

async function ok(sys, args) {
  const res = await sys.ctr(['-n', sys.ns ?? NS, ...args]);
  if (res.code !== 0) throw new Error(`ctr ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

/** IMAGES images in one namespace (created over the API), then `ctr images ls` timed. */
async function imagesList(sys) {
  const client = createGrpcClient(images.ImagesService, sys.address);
  const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'ab'.repeat(32)}`, size: 1234 };
  for (let i = 0; i < IMAGES; i += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, IMAGES - i) }, (_, j) =>
        client.Create({ image: { name: `docker.io/bench/img${i + j}:latest`, labels: { 'containerd.io/gc.root': 'bench' }, target } }, { namespace: NS }),
      ),
    );
  }
  client.close();
  // Timed once what came before (the creates, an import) is on disk, not while the kernel writes it back.
  await run('sync', []);
  const times = [];
  for (let i = 0; i < 5; i++) times.push(await timed(() => ok(sys, ['images', 'ls', '-q'])));
  return median(times);
}

/**
 * Files of random bytes (incompressible, like layers), each with a digest of
 * its own: a blob already in the store would not be written again.
 */
async function ingestBlobs(dir, mb, count) {
  const shared = Array.from({ length: mb - 1 }, () => randomBytes(1 << 20));
  const blobs = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `blob${i}`);
    const file = await open(path, 'w');
    const hash = createHash('sha256');
    for (const chunk of [randomBytes(1 << 20), ...shared]) {
      hash.update(chunk);
      await file.write(chunk);
    }
    await file.close();
    blobs.push({ path, size: mb << 20, digest: `sha256:${hash.digest('hex')}` });
  }
  return blobs;
}

/** Median time of `ctr content ingest` of each blob from a file on stdin: the Content Write stream alone, 1 MiB per round trip. */
async function ingest(sys, blobs) {
  const times = [];
  for (const [i, blob] of blobs.entries()) {
    const args = ['-a', sys.address, '-n', NS, 'content', 'ingest', '--expected-size', String(blob.size), '--expected-digest', blob.digest, `ingest-${i}`];
    times.push(
      await timed(async () => {
        const res = await run('/bin/sh', ['-c', `exec /usr/bin/ctr "$@" < '${blob.path}'`, 'ctr', ...args], { timeoutMs: 600_000 });
        if (res.code !== 0) throw new Error(`ctr content ingest: ${res.stderr}`);
      }),
    );
  }
  const listed = await ok(sys, ['content', 'ls', '-q']);
  for (const blob of blobs) if (!listed.includes(blob.digest)) throw new Error(`ingested blob ${blob.digest} not listed`);
  return median(times);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {};

// BENCH_TMPFS=1: each system's root and state on a tmpfs of its own, so neither pays for
// the filesystem's state (on ext4 without a journal, creating files near recently deleted
// ones is several times slower, and whichever system runs after a deletion pays for it).
const TMPFS = process.env.BENCH_TMPFS === '1';

/** Runs `fn(sys)` on `name` started on a fresh root, after what came before is on disk. */
async function onFreshRoot(name, fn) {
  // What was measured before wrote is flushed first: its writeback (and the removal
  // of its root) would otherwise take disk and CPU from this measure.
  await run('sync', []);
  const dir = await tempDir(`bx-bench-${name}-`);
  if (TMPFS) await run('mount', ['-t', 'tmpfs', '-o', 'size=12g', 'tmpfs', dir]);
  const sys = await systems[name](join(dir, name));
  try {
    await new Promise((res) => setTimeout(res, 3000));
    return await fn(sys);
  } finally {
    await sys.stop();
    if (TMPFS) await run('umount', [dir]);
    await removeDir(dir);
  }
}

/** Idle memory, then what runs alone on a fresh root: ingest and the image list. */
async function measure(name, blobs) {
  const r = (results[name] = {});
  await onFreshRoot(name, async (sys) => {
    r.idlePssKb = await pss(await sys.daemonPids());
    if (blobs) r.ingestMs = await ingest(sys, blobs);
    if (only.has('list')) r.imagesListMs = await imagesList(sys);
  });
}

/**
 * The large import, IMPORTS times per system, each on a fresh root and the
 * systems alternating (which one goes first alternates too): one import takes
 * seconds and its time moves by some tenths from one to the next, so the
 * median of several is compared.
 */
async function measureImports(big) {
  const times = { containerd: [], boxd: [] };
  for (let i = 0; i < IMPORTS; i++) {
    await alternately(i, (name) => onFreshRoot(name, async (sys) => times[name].push(await timed(() => ok(sys, ['images', 'import', big.archive])))));
  }
  for (const name of ['containerd', 'boxd']) {
    results[name].importMs = median(times[name]);
    console.log(`${name} imports (s): ${times[name].map((t) => (t / 1000).toFixed(2)).join(', ')}`);
  }
}

/** Runs `fn(name)` for both systems, alternating which goes first, so drift in the machine's speed hits both alike. */
async function alternately(i, fn) {
  const order = i % 2 ? ['boxd', 'containerd'] : ['containerd', 'boxd'];
  for (const name of order) await fn(name);
}

/**
 * Containers, with both systems up on fresh roots: `ctr run --rm` latency (the
 * systems' runs interleaved, as this machine's speed drifts over minutes), then
 * DETACHED detached starts, and the memory the running containers cost.
 */
async function measureRuns(small) {
  const dirs = {};
  const up = {};
  try {
    for (const name of ['containerd', 'boxd']) {
      dirs[name] = await tempDir(`bx-bench-run-${name}-`);
      if (TMPFS) await run('mount', ['-t', 'tmpfs', '-o', 'size=2g', 'tmpfs', dirs[name]]);
      up[name] = { ...(await systems[name](join(dirs[name], name))), ns: `${NS}-${name}` };
      await ok(up[name], ['images', 'import', small.archive]);
    }
    // As before each fresh-root measure: the earlier measures' writeback (two large
    // imports, their roots' removal) is done before the first timed run.
    await run('sync', []);
    await new Promise((res) => setTimeout(res, 3000));
    if (only.has('run')) {
      const times = { containerd: [], boxd: [] };
      for (let i = 0; i < RUNS; i++) await alternately(i, async (name) => times[name].push(await timed(() => ok(up[name], ['run', '--rm', small.ref, `rm${i}`, 'true']))));
      for (const name of ['containerd', 'boxd']) results[name].runRmMedianMs = median(times[name]);
    }
    if (only.has('memory')) await measureDetached(up, small);
  } finally {
    for (const name of ['containerd', 'boxd']) {
      await up[name]?.stop();
      if (TMPFS && dirs[name]) await run('umount', [dirs[name]]);
      if (dirs[name]) await removeDir(dirs[name]);
    }
  }
}

/**
 * DETACHED detached starts per system, DETACHED_ROUNDS times (the containers removed
 * between rounds), and the median round compared: one round's time moves by some
 * percent with runc's own start-up time. The memory is measured after the first.
 */
async function measureDetached(up, small) {
  // Let what the import and the runs set going settle first: plugins starting or
  // stopping on demand, and V8 handing back a fresh process's start-up heap (it
  // does so some 8 s after start), which would otherwise be counted as a saving.
  await new Promise((res) => setTimeout(res, 10_000));
  const base = {};
  for (const name of ['containerd', 'boxd']) {
    const pids = await up[name].daemonPids();
    base[name] = new Map(await Promise.all(pids.map(async (pid) => [pid, await pss([pid])])));
  }
  const rounds = { containerd: [], boxd: [] };
  for (let round = 0; round < DETACHED_ROUNDS; round++) {
    const ids = Array.from({ length: DETACHED }, (_, i) => `d${round}-${i}`);
    const took = await startDetached(up, small, ids);
    for (const name of ['containerd', 'boxd']) rounds[name].push(took[name]);
    if (round === 0) {
      await new Promise((res) => setTimeout(res, 2000));
      await measureContainerPss(up, base);
    }
    await removeDetached(up, ids);
  }
  for (const name of ['containerd', 'boxd']) results[name].detachedMs = median(rounds[name]);
  const fmt = (name, i) => (rounds[name][i] / 1000).toFixed(2);
  console.log(`detached rounds (s, containerd / boxd): ${rounds.boxd.map((_, i) => `${fmt('containerd', i)} / ${fmt('boxd', i)}`).join(', ')}`);
}

/**
 * Each system starts its containers back to back, as someone starting 20 would, in
 * two blocks ordered containerd, boxd, boxd, containerd so drift hits both alike.
 * Interleaved one by one, every start found the other system's run just done and
 * its own processes idle since (boxd's several, containerd's one).
 */
async function startDetached(up, small, ids) {
  const took = { containerd: 0, boxd: 0 };
  const half = Math.ceil(ids.length / 2);
  for (const [name, from, to] of [['containerd', 0, half], ['boxd', 0, half], ['boxd', half, ids.length], ['containerd', half, ids.length]]) {
    for (const id of ids.slice(from, to)) took[name] += await timed(() => ok(up[name], ['run', '-d', small.ref, id, 'sleep', '600']));
  }
  return took;
}

/**
 * A plugin that stopped meanwhile (started on demand, now idle) is no saving the
 * containers made: the base counts only processes still there. One started for
 * them counts in full, as do the shims.
 */
async function measureContainerPss(up, base) {
  for (const name of ['containerd', 'boxd']) {
    const sys = up[name];
    const loadedPids = await sys.daemonPids();
    const before = loadedPids.reduce((sum, pid) => sum + (base[name].get(pid) ?? 0), 0);
    const loaded = await pss([...loadedPids, ...(await sys.shimPids())]);
    results[name].perContainerPssKb = (loaded - before) / DETACHED;
  }
}

async function removeDetached(up, ids) {
  for (const sys of Object.values(up)) {
    for (const id of ids) await sys.ctr(['-n', sys.ns, 'tasks', 'kill', '-s', 'KILL', id]);
  }
  await new Promise((res) => setTimeout(res, 1000));
  for (const sys of Object.values(up)) {
    for (const id of ids) {
      await sys.ctr(['-n', sys.ns, 'tasks', 'delete', id]);
      await sys.ctr(['-n', sys.ns, 'containers', 'delete', id]);
    }
  }
  // What the removals set going (unmounts, network namespaces torn down, snapshots
  // collected) is done before the next round.
  await new Promise((res) => setTimeout(res, 5000));
}

/**
 * Daemons, shims and containers left running from elsewhere (a test cut short, another
 * bench) take CPU from both systems at random moments: their ratios move by some percent.
 */
async function warnOfStrays() {
  const strays = await processesWhere((argv) => /^containerd/.test(argv[0]?.split('/').pop() ?? '') || argv.some((a) => /\/\.?bin\/boxd(-[a-z-]+)?(\.js)?$/.test(a)));
  if (strays.length) console.log(`warning: already running, skewing what follows: pids ${strays.join(', ')}`);
}

await warnOfStrays();
const imgDir = await tempDir('bx-bench-img-');
const small = await buildTestImage({ dir: imgDir });
const big = only.has('import') ? await largeImage() : undefined;
if (big) console.log(`large image: ${(big.compressedBytes / 1e6).toFixed(0)} MB compressed, ${big.files} files, ${big.layers.length} gzip layers`);
const blobs = only.has('ingest') ? await ingestBlobs(imgDir, INGEST_MB, INGEST_RUNS) : undefined;
for (const name of ['containerd', 'boxd']) await measure(name, blobs);
if (big) await measureImports(big);
if (only.has('run') || only.has('memory')) await measureRuns(small);
await removeDir(imgDir);

const rows = [
  ['idle PSS (MB)', 'idlePssKb', (v) => (v / 1024).toFixed(1), 3.0],
  [`ctr content ingest, ${INGEST_MB} MiB, median of ${INGEST_RUNS} (s)`, 'ingestMs', (v) => (v / 1000).toFixed(2), 0.6],
  [`ctr images import, large, median of ${IMPORTS} (s)`, 'importMs', (v) => (v / 1000).toFixed(2), 0.6],
  [`ctr images ls, ${IMAGES} images (ms)`, 'imagesListMs', (v) => v.toFixed(0), 1.0],
  [`ctr run --rm, median of ${RUNS} (ms)`, 'runRmMedianMs', (v) => v.toFixed(0), 1.0],
  [`start ${DETACHED} detached, median of ${DETACHED_ROUNDS} (s)`, 'detachedMs', (v) => (v / 1000).toFixed(2), 1.0],
  ['PSS per running container (MB)', 'perContainerPssKb', (v) => (v / 1024).toFixed(2), 0.5],
];
console.log('\n| measure | containerd | boxd | ratio | target |\n|---|---|---|---|---|');
for (const [label, key, fmt, target] of rows) {
  const a = results.containerd[key];
  const b = results.boxd[key];
  if (a === undefined || b === undefined) continue;
  const ratio = b / a;
  console.log(`| ${label} | ${fmt(a)} | ${fmt(b)} | ${ratio.toFixed(2)}x | ≤ ${target}x ${ratio <= target ? 'met' : 'MISSED'} |`);
}
