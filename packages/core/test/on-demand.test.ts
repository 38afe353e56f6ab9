import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { health, isUnavailable, version } from '@boxd/api';
import { TtrpcClient } from '@boxd/ttrpc';
import { waitFor } from '@boxd/test-utils';
import { parseConfig } from '../src/config.js';
import { PluginHost } from '../src/plugin-host.js';
import { FrameSplitter } from '../src/activation-socket.js';
import { encodeFrame, MessageType } from '@boxd/ttrpc';

const dir = mkdtempSync('/tmp/bx-od-');
const fixture = new URL('./fixtures/version-plugin.mjs', import.meta.url).pathname;
const logger = pino({ level: 'silent' });
const BUILTINS = ['content', 'events', 'overlayfs', 'native', 'diff', 'metadata'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The fixture plugins inherit it: keep their info lines out of the test output.
process.env.BOXD_LOG_LEVEL = 'warn';

let hosts: PluginHost[] = [];
let n = 0;

/** A host running only the given plugins (TOML tables), the built-in ones disabled. */
async function host(plugins: string): Promise<{ host: PluginHost; state: string }> {
  const base = join(dir, String(n++));
  const disabled = BUILTINS.map((id) => `[plugins.${id}]\ndisabled = true\n`).join('');
  const config = parseConfig(disabled + plugins, { root: join(base, 'root'), state: join(base, 'state') });
  const h = new PluginHost(config, logger);
  hosts.push(h);
  await h.startAll();
  return { host: h, state: join(base, 'state') };
}

const pidOf = (state: string, id: string): number | undefined => {
  const file = join(state, 'plugins', `${id}.pid`);
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined;
};

const alive = (pid: number | undefined) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const demandPlugin = (id: string, type = 'events', idle = '300ms') => `[plugins.${id}]\ntype = "${type}"\nexec = ["${fixture}"]\nstart = "demand"\nidle_exit = "${idle}"\n`;

afterEach(async () => {
  for (const h of hosts) await h.stopAll();
  hosts = [];
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a plugin started on demand', () => {
  it('starts on its first call (once for concurrent calls), stops when idle, and starts again', async () => {
    const { host: h, state } = await host(demandPlugin('fx'));
    expect(pidOf(state, 'fx')).toBeUndefined();
    expect(h.statuses().find((s) => s.id === 'fx')).toMatchObject({ error: undefined, exports: { address: join(state, 'plugins', 'fx.sock') } });

    const client = h.client('fx', version.VersionService);
    const answers = await Promise.all([client.Version({}), client.Version({}), client.Version({})]);
    const pid = Number(answers[0].version);
    expect(answers.map((a) => Number(a.version))).toEqual([pid, pid, pid]);
    expect(pidOf(state, 'fx')).toBe(pid);

    await waitFor(() => !alive(pid) && pidOf(state, 'fx') === undefined, 5000);
    const again = Number((await client.Version({})).version);
    expect(again).not.toBe(pid);
    expect(alive(again)).toBe(true);
  });

  it('stays up while a stream is open and stops once it ends', async () => {
    const { host: h, state } = await host(demandPlugin('fx'));
    const watch = h.client('fx', health.HealthService).Watch({ service: '' })[Symbol.asyncIterator]();
    expect((await watch.next()).value).toMatchObject({ status: health.HealthCheckResponse_ServingStatus.SERVING });
    const pid = pidOf(state, 'fx');
    await sleep(900);
    expect(alive(pid)).toBe(true);
    await watch.return?.();
    await waitFor(() => !alive(pid), 5000);
  });

  it('after a crash it is started by the next call, or at once while something still holds it', async () => {
    const { host: h, state } = await host(demandPlugin('store', 'content', '60s') + demandPlugin('differ', 'diff', '60s'));
    const store = h.client('store', version.VersionService);
    const first = Number((await store.Version({})).version);
    process.kill(first, 'SIGKILL');
    await waitFor(() => pidOf(state, 'store') === undefined, 5000);
    await sleep(300);
    expect(pidOf(state, 'store')).toBeUndefined();
    const second = Number((await store.Version({})).version);
    expect(second).not.toBe(first);

    // The differ holds the store while it runs: the store comes back without a call.
    await h.client('differ', version.VersionService).Version({});
    process.kill(second, 'SIGKILL');
    await waitFor(() => alive(pidOf(state, 'store')) && pidOf(state, 'store') !== second, 5000);
  });

  it('fails calls at once with Unavailable when it cannot start, and says why in its status', async () => {
    const broken = join(dir, 'broken.mjs');
    writeFileSync(broken, 'process.exit(4)\n');
    const { host: h } = await host(`[plugins.bad]\ntype = "events"\nexec = ["${broken}"]\nstart = "demand"\n`);
    const client = h.client('bad', version.VersionService);
    const err = await client.Version({}).catch((e: unknown) => e);
    expect(isUnavailable(err)).toBe(true);
    expect(String(err)).toMatch(/exited before it was ready/);
    // Within the backoff it is not even tried again.
    const started = Date.now();
    expect(isUnavailable(await client.Version({}).catch((e: unknown) => e))).toBe(true);
    expect(Date.now() - started).toBeLessThan(50);
    expect(h.statuses().find((s) => s.id === 'bad')?.error).toMatch(/exited before it was ready/);
  });

  it('a demand plugin holds the demand plugins it streams bulk data from while it runs', async () => {
    const { host: h, state } = await host(demandPlugin('store', 'content', '200ms') + demandPlugin('differ', 'diff', '600ms'));
    const answer = await h.client('differ', version.VersionService).Version({});
    // It dials the store's process directly, and the store runs as long as it does.
    expect(answer.revision).toBe(join(state, 'plugins', 'store.proc.sock'));
    const store = pidOf(state, 'store');
    expect(alive(store)).toBe(true);
    await sleep(400);
    expect(alive(store)).toBe(true);
    await waitFor(() => !alive(pidOf(state, 'differ')) && !alive(store), 5000);
  });
});

describe('the activation socket', () => {
  it('starts the plugin for a client, holds it while a stream is open, and keeps the connection across idle stops', async () => {
    const { host: h, state } = await host(demandPlugin('fx'));
    const conn = await TtrpcClient.connect(join(state, 'plugins', 'fx.sock'));
    try {
      const first = Number((await conn.service(version.VersionService).Version({})).version);
      expect(alive(first)).toBe(true);
      await waitFor(() => !alive(first), 5000);

      // The same connection: its next request starts the plugin again.
      const second = Number((await conn.service(version.VersionService).Version({})).version);
      expect(second).not.toBe(first);

      const watch = conn.service(health.HealthService).Watch({ service: '' })[Symbol.asyncIterator]();
      await watch.next();
      await sleep(900);
      expect(alive(second)).toBe(true);
      expect(h.inUse('events')).toBe(true);
    } finally {
      await conn.close();
    }
    await waitFor(() => !h.inUse('events') && pidOf(state, 'fx') === undefined, 5000);
  });

  it('fails its client fast when the plugin cannot start', async () => {
    const broken = join(dir, 'broken2.mjs');
    writeFileSync(broken, 'process.exit(4)\n');
    const { state } = await host(`[plugins.bad]\ntype = "events"\nexec = ["${broken}"]\nstart = "demand"\n`);
    const conn = await TtrpcClient.connect(join(state, 'plugins', 'bad.sock'));
    const err = await conn.service(version.VersionService).Version({}).catch((e: unknown) => e);
    expect(isUnavailable(err) || /closed/i.test(String(err))).toBe(true);
    await conn.close();
  });
});

describe('FrameSplitter', () => {
  it('finds every frame header and payload however the bytes are chunked', () => {
    const frames = [encodeFrame(1, MessageType.Request, 0, Buffer.from('hello')), encodeFrame(3, MessageType.Data, 1), encodeFrame(5, MessageType.Response, 0, Buffer.alloc(300, 7))];
    const wire = Buffer.concat(frames);
    const ends = new Set(frames.map((_, i) => Buffer.concat(frames.slice(0, i + 1)).length));
    for (const size of [1, 3, 10, 11, 64, wire.length]) {
      const seen: string[] = [];
      let payload = 0;
      const splitter = new FrameSplitter({
        header: (bytes, id, type, flags) => seen.push(`${id}/${type}/${flags}/${bytes.length}`),
        payload: (bytes) => (payload += bytes.length),
      });
      for (let at = 0; at < wire.length; at += size) {
        splitter.push(wire.subarray(at, at + size));
        expect(splitter.midFrame).toBe(!ends.has(Math.min(at + size, wire.length)));
      }
      expect(seen).toEqual(['1/1/0/10', '3/3/1/10', '5/2/0/10']);
      expect(payload).toBe(5 + 300);
    }
  });
});
