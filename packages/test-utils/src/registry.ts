import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { spawnDaemon } from './daemon.js';
import { runOk } from './exec.js';
import { GiveUpError, waitFor } from './wait.js';

export interface Registry {
  /** host:port, e.g. 127.0.0.1:41234 (plain HTTP). */
  url: string;
  port: number;
  logPath: string;
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function registryConfig(storage: string, port: number): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
}

async function answersV2(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(1_000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Starts Debian's docker-registry (distribution v2) on a free loopback port, storing under dir. */
export async function startRegistry(dir: string): Promise<Registry> {
  const storage = join(dir, 'registry');
  await mkdir(storage, { recursive: true });
  const logPath = join(dir, 'registry.log');
  // A port can be taken between freePort() and the registry's bind; try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const configPath = join(dir, 'registry.yml');
    await writeFile(configPath, registryConfig(storage, port));
    const daemon = spawnDaemon('docker-registry', ['serve', configPath], logPath);
    try {
      await waitFor(async () => {
        if (!daemon.running()) throw new GiveUpError('docker-registry exited');
        return answersV2(port);
      }, 10_000, 50);
    } catch (e) {
      await daemon.stop(0);
      if (attempt < 3) continue;
      const log = await readFile(logPath, 'utf8').catch(() => '');
      throw new Error(`docker-registry did not start: ${(e as Error).message}\n${log.slice(-2000)}`);
    }
    return { url: `127.0.0.1:${port}`, port, logPath, stop: () => daemon.stop(3_000) };
  }
}

/**
 * Copies an OCI layout directory (its only/first image, or layout:tag) or an oci-archive
 * file to a plain-HTTP registry with skopeo. dest is "host:port/repo:tag"; a bare
 * "port/repo:tag" means 127.0.0.1:port.
 */
export async function pushWithSkopeo(source: string, dest: string): Promise<void> {
  const target = /^\d+\//.test(dest) ? `127.0.0.1:${dest}` : dest;
  const [path] = source.split(':');
  const isDir = (await stat(path!)).isDirectory();
  const src = isDir ? `oci:${source}` : `oci-archive:${source}`;
  await runOk('skopeo', ['copy', '--insecure-policy', '--dest-tls-verify=false', src, `docker://${target}`], {
    timeoutMs: 120_000,
  });
}
