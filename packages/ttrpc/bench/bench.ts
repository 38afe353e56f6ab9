/**
 * Unary round trips over a unix socket: @boxd/ttrpc vs gRPC (@grpc/grpc-js
 * through @boxd/grpc), same service definition and codecs. The server runs in
 * a child process so client and server each get a core, as in production.
 *
 *   npm run bench                       # 3 s per case, concurrency 1 and 32
 *   BENCH_SECONDS=5 BENCH_CONCURRENCY=1,8,64 npm run bench
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs/minimal.js';
import { method, type MessageCodec, type ServiceClient } from '@boxd/api';
import { TtrpcClient, TtrpcServer } from '@boxd/ttrpc';
import { GrpcServer, createGrpcClient } from '@boxd/grpc';

interface Msg {
  text: string;
  n: number;
}

const MsgCodec: MessageCodec<Msg> = {
  typeName: 'bench.v1.Msg',
  encode(m) {
    const w = protobuf.Writer.create();
    if (m.text) w.uint32(0x0a).string(m.text);
    if (m.n) w.uint32(0x10).int32(m.n);
    return w.finish();
  },
  decode(bytes) {
    const r = protobuf.Reader.create(bytes);
    const m: Msg = { text: '', n: 0 };
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 0x0a) m.text = r.string();
      else if (tag === 0x10) m.n = r.int32();
      else r.skipType(tag & 7);
    }
    return m;
  },
};

const EchoService = {
  name: 'bench.v1.Echo',
  methods: { echo: method('bench.v1.Echo', 'Echo', MsgCodec, MsgCodec, false, false) },
};
type EchoService = typeof EchoService;

const impl = { echo: (req: Msg) => ({ text: req.text, n: req.n + 1 }) };

type Transport = 'ttrpc' | 'grpc';

async function serve(transport: Transport, path: string): Promise<void> {
  if (transport === 'ttrpc') await new TtrpcServer().addService(EchoService, impl).listen(path);
  else await new GrpcServer().addService(EchoService, impl).listen(path);
  process.stdout.write('ready\n');
  // The parent owns our lifetime.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

function startServer(transport: Transport, path: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve', transport, path], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${transport} server exited with ${code}`)));
    child.stdout!.once('data', () => resolve(child));
  });
}

interface Result {
  transport: string;
  concurrency: number;
  calls: number;
  seconds: number;
  p50: number;
  p99: number;
}

async function run(
  call: (m: Msg) => Promise<Msg>,
  concurrency: number,
  ms: number,
  record: boolean,
): Promise<{ calls: number; seconds: number; latencies: Float64Array }> {
  const latencies = new Float64Array(record ? 4_000_000 : 0);
  let count = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  const request = { text: 'hello boxd', n: 1 };
  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= end) return;
      const res = await call(request);
      if (res.n !== 2) throw new Error('bad echo');
      if (record && count < latencies.length) latencies[count] = Number(process.hrtime.bigint() - t0) / 1000;
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { calls: count, seconds, latencies: latencies.subarray(0, Math.min(count, latencies.length)) };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

async function measure(transport: Transport, dir: string, concurrencies: number[], ms: number): Promise<Result[]> {
  const path = join(dir, `${transport}.sock`);
  const child = await startServer(transport, path);
  let call: (m: Msg) => Promise<Msg>;
  let close: () => Promise<void> | void;
  if (transport === 'ttrpc') {
    const client = await TtrpcClient.connect(path);
    const svc: ServiceClient<EchoService> = client.service(EchoService);
    call = (m) => svc.echo(m);
    close = () => client.close();
  } else {
    const svc = createGrpcClient(EchoService, path);
    call = (m) => svc.echo(m);
    close = () => svc.close();
  }
  const results: Result[] = [];
  try {
    for (const concurrency of concurrencies) {
      await run(call, concurrency, Math.min(500, ms), false);
      const { calls, seconds, latencies } = await run(call, concurrency, ms, true);
      latencies.sort();
      results.push({
        transport: transport === 'ttrpc' ? '@boxd/ttrpc' : 'grpc-js',
        concurrency,
        calls,
        seconds,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
      });
    }
  } finally {
    await close();
    child.stdin!.end();
    await new Promise((r) => child.once('exit', r));
  }
  return results;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const ms = Number(process.env.BENCH_SECONDS ?? 3) * 1000;
  const concurrencies = (process.env.BENCH_CONCURRENCY ?? '1,32').split(',').map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'boxd-ttrpc-bench-'));
  try {
    const ttrpc = await measure('ttrpc', dir, concurrencies, ms);
    const grpc = await measure('grpc', dir, concurrencies, ms);
    const rows = [['transport', 'in-flight', 'calls/s', 'p50 µs', 'p99 µs']];
    for (const r of [...ttrpc, ...grpc]) {
      rows.push([r.transport, String(r.concurrency), (r.calls / r.seconds).toFixed(0), r.p50.toFixed(1), r.p99.toFixed(1)]);
    }
    console.log(`unary echo over a unix socket, ${ms / 1000} s per case, server in a child process\n`);
    console.log(table(rows));
    console.log('');
    const ratios = [['in-flight', 'ttrpc/grpc calls/s', 'target']];
    for (const t of ttrpc) {
      const g = grpc.find((x) => x.concurrency === t.concurrency)!;
      ratios.push([String(t.concurrency), `${(t.calls / t.seconds / (g.calls / g.seconds)).toFixed(2)}x`, '>= 3x']);
    }
    console.log(table(ratios));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] as Transport, process.argv[4]!);
else await main();
