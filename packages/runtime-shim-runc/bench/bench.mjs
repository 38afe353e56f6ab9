// Compares containerd-shim-boxd-v2 with upstream containerd-shim-runc-v2 under upstream
// containerd 1.6: `ctr run --rm` latency, and memory (PSS) of the shims serving N
// running containers (total, and the marginal cost of one more container). BENCH_RUNS (default 10) and BENCH_CONTAINERS (default 10) tune it.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTestImage, cleanupTempDirs, findProcesses, startContainerd, tempDir } from '@boxd/test-utils';

const BIN_DIR = join(dirname(fileURLToPath(import.meta.url)), '../bin');
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const CONTAINERS = Number(process.env.BENCH_CONTAINERS ?? 10);

function pssKiB(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function measure(cd, image, runtime) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = await cd.ctr(['run', '--runtime', runtime, '--rm', image.ref, `lat-${i}`, 'true']);
    if (r.code !== 0) throw new Error(`ctr run failed: ${r.stderr}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const shimPss = async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const shims = await findProcesses((argv) => /containerd-shim/.test(argv[0] ?? '') && argv.includes(cd.address));
    return { shims: shims.length, pss: shims.reduce((sum, p) => sum + pssKiB(p.pid), 0) };
  };
  let first;
  for (let i = 0; i < CONTAINERS; i++) {
    const r = await cd.ctr(['run', '--runtime', runtime, '-d', image.ref, `mem-${i}`, 'sleep', '1000']);
    if (r.code !== 0) throw new Error(`ctr run -d failed: ${r.stderr}`);
    if (i === 0) first = await shimPss();
  }
  const all = await shimPss();
  for (let i = 0; i < CONTAINERS; i++) {
    await cd.ctr(['tasks', 'kill', '-s', 'SIGKILL', `mem-${i}`]);
  }
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < CONTAINERS; i++) {
    await cd.ctr(['tasks', 'rm', `mem-${i}`]);
    await cd.ctr(['containers', 'rm', `mem-${i}`]);
  }
  return {
    runtime,
    medianMs: times[Math.floor(times.length / 2)],
    minMs: times[0],
    shims: all.shims,
    [`pssKiB(1)`]: first.pss,
    [`pssKiB(${CONTAINERS})`]: all.pss,
    // What one more container costs once a shim is running.
    marginalKiB: Math.round((all.pss - first.pss) / (CONTAINERS - 1)),
  };
}

process.env.PATH = `${BIN_DIR}:${process.env.PATH}`;
const dir = await tempDir('bx-shb-');
const image = await buildTestImage({ dir });
const cd = await startContainerd({ dir: join(dir, 'cd') });
try {
  await cd.ctr(['images', 'import', image.archive]);
  const results = [];
  for (const runtime of ['io.containerd.runc.v2', 'io.containerd.boxd.v2']) results.push(await measure(cd, image, runtime));
  console.table(results.map((r) => ({ ...r, medianMs: r.medianMs.toFixed(0), minMs: r.minMs.toFixed(0) })));
} finally {
  await cd.stop();
  await cleanupTempDirs();
}
