import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { health, version, isUnavailable } from '@boxd/api';
import { TtrpcClient } from '@boxd/ttrpc';
import { createGrpcClient } from '@boxd/grpc';
import { startPlugin, service, loadConfig, createLogger } from '../src/index.js';

const dir = mkdtempSync('/tmp/bx-pk-');
const fixture = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fixtures/slow-plugin.mjs');
const SERVING = health.HealthCheckResponse_ServingStatus.SERVING;

describe('startPlugin', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const s of stops) await s();
  });

  it('serves its services and health on ttrpc and gRPC with 0600 sockets', async () => {
    const address = join(dir, 'a.sock');
    const grpcAddress = join(dir, 'a-grpc.sock');
    const running = await startPlugin(
      {
        name: 'test',
        setup: ({ config }) => ({ services: [service(version.VersionService, { Version: () => ({ version: String(config.v), revision: 'r' }) })] }),
      },
      { address, grpcAddress, root: join(dir, 'root-a'), config: { v: 'x1' }, logger: createLogger('test', 'silent') },
    );
    stops.push(() => running.stop());
    expect(statSync(address).mode & 0o777).toBe(0o600);
    expect(statSync(grpcAddress).mode & 0o777).toBe(0o600);
    const ttrpc = await TtrpcClient.connect(address);
    expect((await ttrpc.service(version.VersionService).Version({})).version).toBe('x1');
    expect((await ttrpc.service(health.HealthService).Check({ service: '' })).status).toBe(SERVING);
    expect((await ttrpc.service(health.HealthService).Check({ service: 'containerd.services.version.v1.Version' })).status).toBe(SERVING);
    expect((await ttrpc.service(health.HealthService).Check({ service: 'nope' })).status).toBe(health.HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN);
    await ttrpc.close();
    const grpc = createGrpcClient(version.VersionService, grpcAddress);
    expect((await grpc.Version({})).version).toBe('x1');
    grpc.close();
  });

  it('fails to start on a socket a live server owns', async () => {
    const address = join(dir, 'b.sock');
    const spec = { name: 'test', setup: () => ({ services: [] }) };
    const first = await startPlugin(spec, { address, root: join(dir, 'root-b'), logger: createLogger('test', 'silent') });
    stops.push(() => first.stop());
    await expect(startPlugin(spec, { address, root: join(dir, 'root-b2'), logger: createLogger('test', 'silent') })).rejects.toThrow(/in use|running/);
  });
});

describe('loadConfig', () => {
  it('takes the plugin section when present, the whole file otherwise', async () => {
    const a = join(dir, 'a.toml');
    writeFileSync(a, 'other = 1\n[slow]\nversion = "v9"\n');
    expect(await loadConfig(a, 'slow')).toEqual({ version: 'v9' });
    expect(await loadConfig(a, 'else')).toEqual({ other: 1, slow: { version: 'v9' } });
    writeFileSync(a, 'not = = toml');
    await expect(loadConfig(a, 'slow')).rejects.toThrow(/not valid TOML/);
  });
});

describe('runPlugin as a process', () => {
  it('signals readiness on --ready-fd, drains in-flight calls on SIGTERM, closes stores, exits 0', async () => {
    const address = join(dir, 'p.sock');
    const root = join(dir, 'root-p');
    const cfg = join(dir, 'p.toml');
    writeFileSync(cfg, '[slow]\nversion = "from-config"\n');
    const child = spawn(process.execPath, [fixture, '--address', address, '--root', root, '--config', cfg, '--ready-fd', '3', '--log-level', 'warn'], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    });
    const [line] = (await once(child.stdio[3] as Readable, 'data')) as [Buffer];
    expect(line.toString()).toBe('ready\n');
    const client = await TtrpcClient.connect(address);
    const inflight = client.service(version.VersionService).Version({});
    await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const res = await inflight;
    expect(res.version).toBe('from-config');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(readFileSync(join(root, 'closed'), 'utf8')).toBe('yes');
    expect(existsSync(address)).toBe(false);
    await expect(client.service(version.VersionService).Version({})).rejects.toSatisfy(isUnavailable);
  });

  it('rejects bad flags with exit code 2', async () => {
    const child = spawn(process.execPath, [fixture, '--bogus'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(err).toMatch(/bogus/);
  });
});
