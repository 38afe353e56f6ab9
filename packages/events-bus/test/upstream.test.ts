/**
 * Interop with upstream binaries: `ctr events` subscribes to our bus, and
 * `containerd publish` (the publish binary shims are given) publishes to it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import Long from 'long';
import { events, protobuf } from '@boxd/api';
import { createEventPublisher, packEvent, unpackEvent } from '../src/index.js';
import { cancelCollectors, Collector, startHarness, subscribed, waitFor, type Harness } from './helpers.js';

const CTR = '/usr/bin/ctr';
const CONTAINERD = '/usr/bin/containerd';
const haveUpstream = existsSync(CTR) && existsSync(CONTAINERD);

let h: Harness;
const children = new Set<ChildProcess>();
beforeAll(async () => {
  h = await startHarness();
});
async function killChildren(): Promise<void> {
  await Promise.all(
    [...children].map((child) => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      return exited;
    }),
  );
}
afterEach(async () => {
  await killChildren();
  await cancelCollectors(h);
});
afterAll(async () => {
  await killChildren();
  await h?.stop();
});

/** `ctr events` as a child process, its stdout split into lines. */
function ctrEvents(args: string[] = []): { child: ChildProcess; lines: string[]; stderr: () => string } {
  const child = spawn(CTR, ['-a', h.grpcSocket, 'events', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const lines: string[] = [];
  let partial = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  return { child, lines, stderr: () => err };
}

function run(cmd: string, args: string[], stdin: Uint8Array): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      children.delete(child);
      resolve({ code, stderr });
    });
    child.stdin!.end(stdin);
  });
}

/** Go prints a time as `2006-01-02 15:04:05.999999999 +0000 UTC`; back to ns since the epoch. */
function goTimeToNanos(text: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))? \+0000 UTC$/.exec(text);
  if (!m) throw new Error(`not a Go UTC time: ${text}`);
  const seconds = BigInt(Date.parse(`${m[1]}T${m[2]}Z`) / 1000);
  return seconds * 1_000_000_000n + BigInt((m[3] ?? '').padEnd(9, '0'));
}

describe.skipIf(!haveUpstream)('upstream ctr and containerd', () => {
  it('`ctr events` prints what is published on the bus, and leaving it cleans up', async () => {
    const ctr = ctrEvents();
    await waitFor('ctr to subscribe', () => h.bus.stats.subscribers === 1, 10_000);
    const ours = await subscribed(h, () => Collector.grpc(h));
    const publisher = createEventPublisher(h.grpc);
    await publisher.publish('default', '/tasks/exit', events.TaskExit, { containerId: 'c1', id: 'c1', pid: 42, exitStatus: 3 });
    await publisher.publish('k8s.io', '/namespaces/create', events.NamespaceCreate, { name: 'k8s.io', labels: { team: 'a' } });
    await waitFor('ctr to print two events', () => ctr.lines.length >= 2, 10_000);
    const envelopes = await ours.waitForCount(2);

    const parsed = ctr.lines.map((line) => {
      const m = /^(.+ UTC) (\S+) (\S+) (.*)$/.exec(line);
      if (!m) throw new Error(`unexpected ctr output: ${line}`);
      return { time: goTimeToNanos(m[1]!), namespace: m[2], topic: m[3], event: JSON.parse(m[4]!) as unknown };
    });
    expect(parsed.map(({ namespace, topic, event }) => ({ namespace, topic, event }))).toEqual([
      {
        namespace: 'default',
        topic: '/tasks/exit',
        event: { container_id: 'c1', id: 'c1', pid: 42, exit_status: 3, exited_at: '0001-01-01T00:00:00Z' },
      },
      { namespace: 'k8s.io', topic: '/namespaces/create', event: { name: 'k8s.io', labels: { team: 'a' } } },
    ]);
    // ctr shows the very timestamp the bus stamped, to the nanosecond.
    const stamped = envelopes.map((e) => BigInt(Long.fromValue(e.timestamp!.seconds).toString()) * 1_000_000_000n + BigInt(e.timestamp!.nanos));
    expect(parsed.map((p) => p.time)).toEqual(stamped);

    ctr.child.kill('SIGKILL');
    await waitFor('the killed subscriber to be removed', () => h.bus.stats.subscribers === 1);
  });

  it('`ctr events` passes its filters through', async () => {
    const ctr = ctrEvents(['topic=="/tasks/oom"', 'event.id==wanted']);
    await waitFor('ctr to subscribe', () => h.bus.stats.subscribers === 1, 10_000);
    const publisher = createEventPublisher(h.grpc);
    await publisher.publish('default', '/tasks/start', events.TaskStart, { containerId: 'no' });
    await publisher.publish('default', '/tasks/exit', events.TaskExit, { containerId: 'c', id: 'unwanted' });
    await publisher.publish('default', '/tasks/oom', events.TaskOOM, { containerId: 'yes' });
    await publisher.publish('default', '/tasks/exit', events.TaskExit, { containerId: 'c', id: 'wanted' });
    await waitFor('ctr to print two events', () => ctr.lines.length >= 2, 10_000);
    await publisher.publish('default', '/tasks/oom', events.TaskOOM, { containerId: 'last' });
    await waitFor('ctr to print the last event', () => ctr.lines.length >= 3, 10_000);
    expect(ctr.lines.map((l) => l.split(' ').slice(5).join(' '))).toEqual([
      '/tasks/oom {"container_id":"yes"}',
      '/tasks/exit {"container_id":"c","id":"wanted","exited_at":"0001-01-01T00:00:00Z"}',
      '/tasks/oom {"container_id":"last"}',
    ]);
    ctr.child.kill('SIGKILL');
    await waitFor('the killed subscriber to be removed', () => h.bus.stats.subscribers === 0);
  });

  it('`ctr events` with a bad filter fails with containerd\'s invalid argument error', async () => {
    const ctr = ctrEvents(['topic===x']);
    const code = await new Promise<number | null>((resolve) => ctr.child.on('exit', (exitCode) => resolve(exitCode)));
    expect(code).not.toBe(0);
    expect(ctr.stderr()).toMatch(/failed parsing subscription filters.*invalid argument/);
  });

  it('`containerd publish` (the shims\' publish binary) reads an Any from stdin and publishes it', async () => {
    const sub = await subscribed(h, () => Collector.grpc(h, ['namespace==pubns']));
    const any = packEvent(events.TaskExit, { containerId: 'shim-c', id: 'shim-c', pid: 7, exitStatus: 1 });
    const stdin = protobuf.Any.encode(any);
    const ok = await run(CONTAINERD, ['--address', h.grpcSocket, 'publish', '--topic', '/tasks/exit', '--namespace', 'pubns'], stdin);
    expect(ok).toEqual({ code: 0, stderr: '' });
    const [got] = await sub.waitForCount(1);
    expect(got!.topic).toBe('/tasks/exit');
    expect(got!.event!.type_url).toBe('containerd.events.TaskExit');
    expect(Buffer.from(got!.event!.value)).toEqual(Buffer.from(any.value));
    expect(unpackEvent(got!.event)).toMatchObject({ containerId: 'shim-c', exitStatus: 1 });

    const badTopic = await run(CONTAINERD, ['--address', h.grpcSocket, 'publish', '--topic', 'tasks', '--namespace', 'pubns'], stdin);
    expect(badTopic.code).toBe(1);
    expect(badTopic.stderr).toMatch(/topic "tasks" must start with "\/": invalid argument/);
    const noNamespace = await run(CONTAINERD, ['--address', h.grpcSocket, 'publish', '--topic', '/tasks/exit'], stdin);
    expect(noNamespace.code).toBe(1);
    expect(noNamespace.stderr).toMatch(/namespace is required: failed precondition/);
    expect(sub.received).toHaveLength(1);
  });
});
