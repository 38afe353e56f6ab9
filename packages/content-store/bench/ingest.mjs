#!/usr/bin/env node
/**
 * `ctr content ingest` of one large blob (default 1 GiB) into upstream
 * containerd 1.6 twice, each with a fresh root: once with containerd's
 * builtin content store, once with boxd's content store as its proxy content
 * plugin. Prints both times and the ratio (target: ours <= 1.1x).
 *
 *   npm run bench                      # 1 GiB, one run each
 *   BENCH_SIZE_MIB=256 BENCH_RUNS=3 npm run bench   # best of 3
 *
 * Needs root and the Debian containerd package (as the tests do). Run
 * `npm run build` first: it starts dist/bin.js.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, openSync, closeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { CTR, spawnDaemon, startContainerd, waitForSocket } from '@boxd/test-utils';

const MiB = 1 << 20;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 1024) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const BIN = process.env.BENCH_BIN ?? fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** Random bytes to a file, 16 MiB at a time; returns the digest. */
async function generate(path, size) {
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  for (let written = 0; written < size; ) {
    const chunk = randomBytes(Math.min(16 * MiB, size - written));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
    written += chunk.length;
  }
  out.end();
  await once(out, 'finish');
  return `sha256:${hash.digest('hex')}`;
}

/** Runs `ctr content ingest` with the file as stdin; returns seconds. */
async function ingest(address, file, digest, ref) {
  const input = openSync(file, 'r');
  const started = process.hrtime.bigint();
  const child = spawn(CTR, ['-a', address, 'content', 'ingest', '--expected-size', String(SIZE), '--expected-digest', digest, ref], {
    stdio: [input, 'ignore', 'pipe'],
  });
  closeSync(input);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'exit');
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`ctr content ingest exited ${code}: ${stderr}`);
  return seconds;
}

async function withBuiltin(dir, file, digest, run) {
  const containerd = await startContainerd({ dir: join(dir, `builtin-${run}`) });
  try {
    return await ingest(containerd.address, file, digest, `bench-builtin-${run}`);
  } finally {
    await containerd.stop();
  }
}

async function withBoxd(dir, file, digest, run) {
  const base = join(dir, `boxd-${run}`);
  const socket = join(dir, `cs-${run}.sock`);
  const store = spawnDaemon(process.execPath, [BIN, '--grpc-address', socket, '--root', join(base, 'store'), '--log-level', 'warn'], join(dir, `cs-${run}.log`));
  let containerd;
  try {
    await waitForSocket(socket);
    containerd = await startContainerd({
      dir: join(base, 'cd'),
      proxyPlugins: { boxd: { type: 'content', address: socket } },
      disableBuiltins: ['io.containerd.content.v1.content'],
    });
    return await ingest(containerd.address, file, digest, `bench-boxd-${run}`);
  } finally {
    await containerd?.stop();
    await store.stop();
  }
}

const dir = await mkdtemp('/tmp/bx-bench-');
try {
  const file = join(dir, 'blob');
  process.stdout.write(`generating ${SIZE / MiB} MiB of random data... `);
  const digest = await generate(file, SIZE);
  process.stdout.write(`${digest}\n`);
  const builtin = [];
  const boxd = [];
  for (let run = 0; run < RUNS; run++) {
    builtin.push(await withBuiltin(dir, file, digest, run));
    boxd.push(await withBoxd(dir, file, digest, run));
    console.log(`run ${run + 1}: builtin ${builtin[run].toFixed(2)} s, boxd proxy ${boxd[run].toFixed(2)} s`);
  }
  const best = (times) => Math.min(...times);
  const mibps = (s) => (SIZE / MiB / s).toFixed(0);
  console.log(`ctr content ingest, ${SIZE / MiB} MiB, best of ${RUNS}:`);
  console.log(`  upstream containerd, builtin content store: ${best(builtin).toFixed(2)} s (${mibps(best(builtin))} MiB/s)`);
  console.log(`  upstream containerd, boxd content store:    ${best(boxd).toFixed(2)} s (${mibps(best(boxd))} MiB/s)`);
  console.log(`  ratio boxd / builtin: ${(best(boxd) / best(builtin)).toFixed(2)}x (target <= 1.10x)`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
