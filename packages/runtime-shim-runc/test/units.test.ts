/** Pieces that need no container: flags, grouping, overlay options, encodings, events. */
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventsTtrpc, events, taskV2 } from '@boxd/api';
import { TtrpcServer } from '@boxd/ttrpc';
import { cleanupTempDirs, findProcesses, isAlive, run, runOk, tempDir, waitFor } from '@boxd/test-utils';
import { TtrpcClient } from '@boxd/ttrpc';
import { pino } from 'pino';
import {
  DAEMON_NODE_FLAGS,
  compactOverlayOptions,
  encodeDeleteResponse,
  groupKey,
  mountAll,
  PAGE_SIZE,
  parseFlags,
  shimSocketPath,
  stdioScheme,
  unmountAll,
} from '../src/index.js';
import { EventPublisher } from '../src/events.js';
import { startThroughExecFifo } from '../src/exec-fifo.js';
import { deleteStopped } from '../src/stopped-delete.js';
import { SHIM_BIN } from './support.js';

afterAll(async () => {
  await cleanupTempDirs();
  // runc delete --force in the delete test creates its state root.
  await run('rm', ['-rf', '/run/boxd/runc/bx-del']);
});

describe('flags', () => {
  it('parses the argv containerd 1.6 passes to start', () => {
    const f = parseFlags(['-namespace', 'default', '-address', '/run/c.sock', '-publish-binary', '/usr/bin/containerd', '-id', 't3', '-debug', 'start']);
    expect(f).toMatchObject({ namespace: 'default', address: '/run/c.sock', publishBinary: '/usr/bin/containerd', id: 't3', debug: true, action: 'start' });
  });

  it('accepts -flag=value and --flag, and no action for the daemon', () => {
    expect(parseFlags(['--namespace=ns', '-id=x', '-debug=false'])).toMatchObject({ namespace: 'ns', id: 'x', debug: false, action: undefined });
  });

  it('rejects unknown flags and missing values like Go flag does', () => {
    expect(() => parseFlags(['-nope', 'start'])).toThrow('flag provided but not defined: -nope');
    expect(() => parseFlags(['-id'])).toThrow('flag needs an argument: -id');
  });
});

describe('grouping', () => {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');

  it('per-container names the socket as upstream: sha256(address/namespace/id)', () => {
    const path = shimSocketPath('/run/cd.sock', 'default', groupKey('per-container', 't2'), {});
    expect(path).toBe(`/run/containerd/s/${sha('/run/cd.sock/default/t2')}`);
  });

  it('per-sandbox follows upstream annotations; per-namespace ignores ids', () => {
    expect(groupKey('per-sandbox', 'c1', { 'io.kubernetes.cri.sandbox-id': 'pod' })).toBe('pod');
    expect(groupKey('per-sandbox', 'c1', { 'io.containerd.runc.v2.group': 'g', 'io.kubernetes.cri.sandbox-id': 'pod' })).toBe('g');
    expect(groupKey('per-sandbox', 'c1')).toBe('c1');
    expect(groupKey('per-namespace', 'a')).toBe(groupKey('per-namespace', 'b'));
    expect(groupKey('per-namespace', 'a')).not.toBe('a');
  });
});

describe('stdio schemes', () => {
  const spec = (stdout: string, stdin = '', stderr = '') => ({ stdin, stdout, stderr, terminal: false });
  it('decides by stdout as upstream', () => {
    expect(stdioScheme(spec('')).scheme).toBe('null');
    expect(stdioScheme(spec('/run/fifo/x-stdout'))).toMatchObject({ scheme: 'fifo', path: '/run/fifo/x-stdout' });
    expect(stdioScheme(spec('file:///var/log/a%20b.log'))).toMatchObject({ scheme: 'file', path: '/var/log/a b.log' });
    expect(stdioScheme(spec('binary:///usr/bin/logger?tag=x'))).toMatchObject({ scheme: 'binary', path: '/usr/bin/logger' });
    expect(() => stdioScheme(spec('tcp://1.2.3.4:5'))).toThrow('unknown STDIO scheme tcp');
  });
});

describe('DeleteResponse encoding', () => {
  it('decodes with the protobuf codec for zero, small and 64-bit values', () => {
    for (const [pid, status, nanos] of [
      [0, 0, 0n],
      [12345, 137, 1_700_000_000_123_456_789n],
      [4_194_304, 255, 4_102_444_800_999_999_999n],
    ] as const) {
      const decoded = taskV2.DeleteResponse.decode(encodeDeleteResponse(pid, status, nanos));
      expect(decoded.pid).toBe(pid);
      expect(decoded.exitStatus).toBe(status);
      expect(decoded.exitedAt!.seconds.toString()).toBe((nanos / 1_000_000_000n).toString());
      expect(decoded.exitedAt!.nanos).toBe(Number(nanos % 1_000_000_000n));
    }
  });

  it('the shell entry and the Node entry print the same bytes for delete', async () => {
    const dir = await tempDir('bx-del-');
    const bundle = join(dir, 'b');
    await mkdir(join(bundle, 'rootfs'), { recursive: true });
    await writeFile(join(bundle, 'init.pid'), '4242');
    await writeFile(join(bundle, 'init.exit'), '3 1700000000123456789');
    const args = ['-namespace', 'bx-del', '-address', join(dir, 'c.sock'), '-id', 'nosuch', '-bundle', bundle, 'delete'];
    const env = { ...process.env, BOXD_SHIM_STATE_DIR: join(dir, 'state') };
    const viaShell = await runOk(SHIM_BIN, args, { cwd: bundle, env });
    const viaNode = await runOk(process.execPath, [join(SHIM_BIN, '../../dist/shim.mjs'), ...args], { cwd: bundle, env });
    expect(viaShell.stdoutBytes).toEqual(viaNode.stdoutBytes);
    expect(taskV2.DeleteResponse.decode(viaShell.stdoutBytes)).toMatchObject({ pid: 4242, exitStatus: 3 });
    expect(viaShell.stderr).toBe('');
  });
});

describe('cold start from the shell entry', () => {
  it('launches one daemon for concurrent starts of a group, named and flagged as the Node start would', async () => {
    const dir = await tempDir('bx-cold-');
    const env = { ...process.env, BOXD_SHIM_SOCKET_DIR: join(dir, 's'), BOXD_SHIM_STATE_DIR: join(dir, 'state'), BOXD_SHIM_IDLE_EXIT_MS: '0' };
    await mkdir(env.BOXD_SHIM_SOCKET_DIR, { recursive: true });
    const namespace = `cold${process.pid}`;
    const starts = [0, 1, 2, 3].map(async (i) => {
      const bundle = join(dir, `b${i}`);
      await mkdir(bundle);
      const extra = i === 0 ? ['-publish-binary', '/usr/bin/containerd', '-debug'] : [];
      const res = await runOk(SHIM_BIN, ['-namespace', namespace, '-address', join(dir, 'c.sock'), ...extra, '-id', `t${i}`, 'start'], { cwd: bundle, env });
      expect(await readFile(join(bundle, 'address'), 'utf8')).toBe(res.stdout);
      return res.stdout;
    });
    const addresses = await Promise.all(starts);
    expect(new Set(addresses).size).toBe(1);
    const socket = shimSocketPath(join(dir, 'c.sock'), namespace, groupKey('per-namespace', 't0'), env);
    expect(addresses[0]).toBe(`unix://${socket}`);

    // A start that lost the claim has printed the winner's address and is on its way out.
    const daemonsOfGroup = () => findProcesses((argv) => argv.includes(namespace) && !argv.includes('start'));
    await waitFor(async () => (await daemonsOfGroup()).length === 1, 5000);
    const daemons = await daemonsOfGroup();
    expect(daemons).toHaveLength(1);
    const argv = daemons[0]!.argv;
    expect(argv[0]).toBe('containerd-shim-boxd-v2');
    expect(argv.slice(1, 1 + DAEMON_NODE_FLAGS.length)).toEqual(DAEMON_NODE_FLAGS);
    try {
      const client = await TtrpcClient.connect(socket);
      const err = await client.service(taskV2.TaskService).State({ id: 'nosuch' }).catch((e: Error) => e);
      expect(String(err)).toMatch(/NotFoundError/);
      await client.service(taskV2.TaskService).Shutdown({ id: 't0' });
      client.close();
      await waitFor(() => !isAlive(daemons[0]!.pid), 5000);
    } finally {
      if (isAlive(daemons[0]!.pid)) process.kill(daemons[0]!.pid, 'SIGKILL');
    }
  });
});

describe('overlay mounts with more lowerdirs than fit in a page', () => {
  it('compacts lowerdirs relative to their common parent', () => {
    const lowers = Array.from({ length: 80 }, (_, i) => `/var/lib/boxd/snapshots/${i}/fs`);
    const options = ['index=off', `lowerdir=${lowers.join(':')}`, 'upperdir=/u', 'workdir=/w'];
    expect(options.join(',').length).toBeLessThan(PAGE_SIZE);
    expect(compactOverlayOptions(options)).toEqual({ options });
    const long = Array.from({ length: 80 }, (_, i) => `/var/lib/boxd/a-rather-long-snapshot-directory-name/snapshots/${i}/fs`);
    const compacted = compactOverlayOptions([`lowerdir=${long.join(':')}`]);
    expect(compacted.cwd).toBe('/var/lib/boxd/a-rather-long-snapshot-directory-name/snapshots');
    expect(compacted.options[0]).toBe(`lowerdir=${long.map((_, i) => `${i}/fs`).join(':')}`);
  });

  it('mounts such an overlay for real and unmounts it', async () => {
    const dir = await tempDir('bx-ovl-');
    const layers = join(dir, 'x'.repeat(100));
    const lowers: string[] = [];
    for (let i = 0; i < 40; i++) {
      const lower = join(layers, `layer-${i}-${'y'.repeat(60)}`);
      await mkdir(lower, { recursive: true });
      await writeFile(join(lower, `f${i}`), String(i));
      lowers.push(lower);
    }
    const options = [`lowerdir=${lowers.join(':')}`];
    expect(options[0]!.length).toBeGreaterThan(PAGE_SIZE);
    const target = join(dir, 'rootfs');
    await mkdir(target);
    await mountAll([{ type: 'overlay', source: 'overlay', options }], target);
    try {
      expect(await readFile(join(target, 'f0'), 'utf8')).toBe('0');
      expect(await readFile(join(target, 'f39'), 'utf8')).toBe('39');
    } finally {
      unmountAll(target);
    }
    expect((await run('mountpoint', ['-q', target])).code).not.toBe(0);
  });
});

describe('event publisher', () => {
  it('retries until containerd\'s events endpoint appears, then delivers in order', async () => {
    const dir = await tempDir('bx-ev-');
    const address = join(dir, 'events.sock');
    const publisher = new EventPublisher(address, 'evns', pino({ level: 'silent' }), 20);
    publisher.publish('/tasks/start', events.TaskStart, { containerId: 'c1', pid: 1 });
    publisher.publish('/tasks/exit', events.TaskExit, { containerId: 'c1', id: 'c1', pid: 1, exitStatus: 3 });
    await new Promise((r) => setTimeout(r, 50));
    const got: { topic: string; ns: string[] | undefined }[] = [];
    const server = new TtrpcServer();
    server.addService(eventsTtrpc.EventsService, {
      async Forward(req, ctx) {
        got.push({ topic: req.envelope!.topic, ns: ctx.metadata['containerd-namespace-ttrpc'] });
        return {};
      },
    });
    await server.listen(address);
    try {
      await waitFor(() => got.length === 2, 5_000);
      expect(got).toEqual([
        { topic: '/tasks/start', ns: ['evns'] },
        { topic: '/tasks/exit', ns: ['evns'] },
      ]);
    } finally {
      await publisher.close();
      await server.close({ graceful: false });
    }
  });
});

describe('start through the exec fifo', () => {
  const fifoIn = async (root: string, id: string) => {
    await mkdir(join(root, id), { recursive: true });
    await runOk('mkfifo', [join(root, id, 'exec.fifo')]);
    return join(root, id, 'exec.fifo');
  };

  it('reads the byte init writes, then removes the fifo', async () => {
    const root = await tempDir('bx-fifo-');
    const fifo = await fifoIn(root, 'c1');
    // Stands in for runc init: blocks opening the fifo for writing until a reader comes.
    const writer = run('/bin/sh', ['-c', `printf 0 > '${fifo}'`]);
    expect(await startThroughExecFifo('runc', root, 'c1', () => true)).toBe(true);
    expect((await writer).code).toBe(0);
    expect(existsSync(fifo)).toBe(false);
  });

  it('leaves the fifo to runc when its writer closes it without writing', async () => {
    const root = await tempDir('bx-fifo-');
    const fifo = await fifoIn(root, 'c4');
    const writer = run('/bin/sh', ['-c', `exec 3>'${fifo}'; exec 3>&-`]);
    expect(await startThroughExecFifo('runc', root, 'c4', () => true)).toBe(false);
    expect((await writer).code).toBe(0);
    expect(existsSync(fifo)).toBe(true);
  });

  it('gives up, leaving the fifo to runc, once init is gone; and leaves runc the other runtimes and odd files', async () => {
    const root = await tempDir('bx-fifo-');
    const fifo = await fifoIn(root, 'c2');
    let polls = 0;
    expect(await startThroughExecFifo('/usr/sbin/runc', root, 'c2', () => ++polls < 5)).toBe(false);
    expect(polls).toBe(5);
    expect(existsSync(fifo)).toBe(true);
    expect(await startThroughExecFifo('crun', root, 'c2', () => true)).toBe(false);
    expect(await startThroughExecFifo('runc', root, 'missing', () => true)).toBe(false);
    await mkdir(join(root, 'c3'));
    await writeFile(join(root, 'c3', 'exec.fifo'), '0');
    expect(await startThroughExecFifo('runc', root, 'c3', () => true)).toBe(false);
  });
});

describe('deleting a stopped container without runc', () => {
  /** A runc state dir whose cgroups are plain directories (a cgroup with a child one, and a path two controllers share). */
  async function stateIn(root: string, id: string, config: Record<string, unknown> = {}) {
    const cg = join(root, 'cgroups');
    const paths = { memory: join(cg, 'memory', id), cpu: join(cg, 'cpu,cpuacct', id), cpuacct: join(cg, 'cpu,cpuacct', id) };
    for (const path of Object.values(paths)) await mkdir(path, { recursive: true });
    await mkdir(join(paths.memory, 'child'));
    await mkdir(join(root, id), { recursive: true });
    const namespaces = [{ type: 'NEWPID', path: '' }, { type: 'NEWNS', path: '' }];
    await writeFile(join(root, id, 'state.json'), JSON.stringify({ id, cgroup_paths: paths, intel_rdt_path: '', config: { namespaces, cgroups: { Systemd: false }, ...config } }));
    return Object.values(paths);
  }

  it('removes the cgroups (children first) and the state dir', async () => {
    const root = await tempDir('bx-del-');
    const cgroups = await stateIn(root, 'c1');
    expect(deleteStopped('/usr/sbin/runc', root, 'c1')).toBe(true);
    expect(cgroups.filter((p) => existsSync(p))).toEqual([]);
    expect(existsSync(join(root, 'c1'))).toBe(false);
  });

  it('leaves runc everything it does beyond that, other runtimes, and a container it cannot read', async () => {
    const root = await tempDir('bx-del-');
    const cases: Array<[string, Record<string, unknown>]> = [
      ['hooks', { hooks: { poststop: [{ path: '/bin/true' }] } }],
      ['host-pid', { namespaces: [{ type: 'NEWNS', path: '' }] }],
      ['joined-pid', { namespaces: [{ type: 'NEWPID', path: '/proc/1/ns/pid' }] }],
      ['systemd', { cgroups: { Systemd: true } }],
      ['rootless', { rootless_cgroups: true }],
    ];
    for (const [id, config] of cases) {
      const cgroups = await stateIn(root, id, config);
      expect(deleteStopped('runc', root, id)).toBe(false);
      expect(cgroups.every((p) => existsSync(p))).toBe(true);
      expect(existsSync(join(root, id, 'state.json'))).toBe(true);
    }
    await stateIn(root, 'other');
    expect(deleteStopped('crun', root, 'other')).toBe(false);
    expect(deleteStopped('runc', root, 'missing')).toBe(false);
    await mkdir(join(root, 'garbled'));
    await writeFile(join(root, 'garbled', 'state.json'), '{not json');
    expect(deleteStopped('runc', root, 'garbled')).toBe(false);
  });

  it('leaves the state to runc when a cgroup cannot go (still has a process, say)', async () => {
    const root = await tempDir('bx-del-');
    const [memory] = await stateIn(root, 'busy');
    // A file in a plain directory stands in for a cgroup rmdir refuses.
    await writeFile(join(memory!, 'child', 'tasks'), '1');
    expect(deleteStopped('runc', root, 'busy')).toBe(false);
    expect(existsSync(join(root, 'busy', 'state.json'))).toBe(true);
  });
});
