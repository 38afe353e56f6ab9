/** The Events service on a real gRPC socket, served by the plugin through plugin-kit. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Long from 'long';
import { Code, events, GO_ZERO_SECONDS, isCode, type BoxdError } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { eventsService } from '@boxd/api';
import { createEventForwarder, createEventPublisher, packEvent, unpackEvent } from '../src/index.js';
import { cancelCollectors, Collector, startHarness, subscribed, waitFor, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await cancelCollectors(h);
});
afterAll(async () => {
  await h?.stop();
});

async function codeOf(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (err) {
    return { code: (err as BoxdError).code, message: (err as Error).message };
  }
  throw new Error('call succeeded');
}

describe('publish and subscribe', () => {
  it('delivers events of every namespace, in order, with the bus timestamp', async () => {
    const all = await subscribed(h, () => Collector.grpc(h));
    const onlyK8s = await subscribed(h, () => Collector.grpc(h, ['namespace==k8s.io']));
    const publisher = createEventPublisher(h.grpc);
    const before = Date.now();
    await publisher.publish('default', '/tasks/exit', events.TaskExit, { containerId: 'a', id: 'a', pid: 7, exitStatus: 137 });
    await publisher.publish('k8s.io', '/namespaces/create', events.NamespaceCreate, { name: 'k8s.io', labels: { a: 'b' } });
    await publisher.publish('default', '/content/delete', events.ContentDelete, { digest: 'sha256:00' });
    const after = Date.now();

    const got = await all.waitForCount(3);
    expect(got.map((e) => [e.namespace, e.topic, e.event?.type_url])).toEqual([
      ['default', '/tasks/exit', 'containerd.events.TaskExit'],
      ['k8s.io', '/namespaces/create', 'containerd.events.NamespaceCreate'],
      ['default', '/content/delete', 'containerd.events.ContentDelete'],
    ]);
    expect(unpackEvent(got[0]!.event)).toMatchObject({ containerId: 'a', pid: 7, exitStatus: 137 });
    expect(unpackEvent(got[1]!.event)).toMatchObject({ name: 'k8s.io', labels: { a: 'b' } });
    const ms = got.map((e) => Long.fromValue(e.timestamp!.seconds).toNumber() * 1000 + e.timestamp!.nanos / 1e6);
    for (const t of ms) expect(t).toBeGreaterThanOrEqual(before - 1);
    for (const t of ms) expect(t).toBeLessThanOrEqual(after + 1);
    expect(ms).toEqual([...ms].sort((a, b) => a - b));

    expect((await onlyK8s.waitForCount(1)).map((e) => e.topic)).toEqual(['/namespaces/create']);
    await all.cancel();
    await onlyK8s.cancel();
    expect(onlyK8s.received).toHaveLength(1);
  });

  it('filters on event fields over the wire, OR-ing filter strings', async () => {
    const c = await subscribed(h, () => Collector.grpc(h, ['event.container_id==x1', 'topic~="^/snapshot/",event.key~=^sha']));
    const publisher = createEventPublisher(h.grpc);
    await publisher.publish('default', '/tasks/start', events.TaskStart, { containerId: 'x0', pid: 1 });
    await publisher.publish('default', '/tasks/start', events.TaskStart, { containerId: 'x1', pid: 2 });
    await publisher.publish('default', '/snapshot/prepare', events.SnapshotPrepare, { key: 'tmp-1', parent: '' });
    await publisher.publish('other', '/snapshot/remove', events.SnapshotRemove, { key: 'sha256:ab' });
    await publisher.publish('default', '/tasks/exit', events.TaskExit, { containerId: 'x1', id: 'x1' });
    const got = await c.waitForCount(3);
    await c.cancel();
    expect(got.map((e) => `${e.namespace}${e.topic}`)).toEqual(['default/tasks/start', 'other/snapshot/remove', 'default/tasks/exit']);
  });

  it('a bad filter fails Subscribe with INVALID_ARGUMENT', async () => {
    const c = Collector.grpc(h, ['topic=="/tasks/exit"', 'namespace~=(']);
    await c.done;
    expect(isCode(c.error, Code.INVALID_ARGUMENT)).toBe(true);
    expect((c.error as Error).message).toMatch(/failed parsing subscription filters/);
    expect(h.bus.stats.subscribers).toBe(0);
  });

  it('Publish needs a namespace, a valid topic and an event', async () => {
    const event = packEvent(events.TaskOOM, { containerId: 'a' });
    expect(await codeOf(h.grpc.Publish({ topic: '/a', event }))).toEqual({
      code: Code.FAILED_PRECONDITION,
      message: 'failed publishing event: namespace is required',
    });
    expect(await codeOf(h.grpc.Publish({ topic: '/a', event }, { namespace: 'bad ns' }))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      message: expect.stringContaining('namespace validation: identifier "bad ns" must match'),
    });
    for (const topic of ['', 'tasks', '/', '/tasks/', '//x', '/tasks/ex it', `/${'a'.repeat(77)}`]) {
      expect((await codeOf(h.grpc.Publish({ topic, event }, { namespace: 'default' }))).code, topic).toBe(Code.INVALID_ARGUMENT);
    }
    expect(await codeOf(h.grpc.Publish({ topic: '/a' }, { namespace: 'default' }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      message: 'event must be set',
    });
  });
});

describe('Forward', () => {
  const event = packEvent(events.TaskPaused, { containerId: 'p' });

  it('passes a complete envelope through unchanged, timestamp included', async () => {
    const c = await subscribed(h, () => Collector.grpc(h, ['topic=="/tasks/paused"']));
    const timestamp = { seconds: Long.fromString('1000000000'), nanos: 123456789 };
    await h.grpc.Forward({ envelope: { timestamp, namespace: 'ns1', topic: '/tasks/paused', event } });
    const [got] = await c.waitForCount(1);
    await c.cancel();
    expect(got!.timestamp!.seconds.toString()).toBe('1000000000');
    expect(got!.timestamp!.nanos).toBe(123456789);
    expect(got!.namespace).toBe('ns1');
    expect(Buffer.from(got!.event!.value)).toEqual(Buffer.from(event.value));
  });

  it('rejects incomplete envelopes with INVALID_ARGUMENT', async () => {
    const timestamp = { seconds: 1_700_000_000, nanos: 0 };
    const cases: [string, Parameters<typeof h.grpc.Forward>[0], RegExp][] = [
      ['no envelope', {}, /envelope must be set/],
      ['no namespace', { envelope: { timestamp, topic: '/a', event } }, /^event envelope has invalid namespace: identifier must not be empty$/],
      ['bad namespace', { envelope: { timestamp, namespace: '-x', topic: '/a', event } }, /invalid namespace: identifier "-x" must match/],
      ['bad topic', { envelope: { timestamp, namespace: 'ns', topic: 'a', event } }, /topic "a" must start with "\/"/],
      ['no timestamp', { envelope: { namespace: 'ns', topic: '/a', event } }, /timestamp must be set on forwarded event/],
      ['Go zero time', { envelope: { timestamp: { seconds: GO_ZERO_SECONDS }, namespace: 'ns', topic: '/a', event } }, /timestamp must be set/],
      ['bad nanos', { envelope: { timestamp: { seconds: 1, nanos: 1_000_000_000 }, namespace: 'ns', topic: '/a', event } }, /out of range/],
      ['no event', { envelope: { timestamp, namespace: 'ns', topic: '/a' } }, /event must be set/],
    ];
    for (const [name, req, message] of cases) {
      const got = await codeOf(h.grpc.Forward(req));
      expect(got.code, name).toBe(Code.INVALID_ARGUMENT);
      expect(got.message, name).toMatch(message);
    }
    expect(h.bus.stats.subscribers).toBe(0);
  });

  it('createEventForwarder stamps and forwards a complete envelope', async () => {
    const c = await subscribed(h, () => Collector.grpc(h, ['namespace==fwd']));
    await createEventForwarder(h.grpc).publish('fwd', '/tasks/resumed', events.TaskResumed, { containerId: 'r' });
    const [got] = await c.waitForCount(1);
    await c.cancel();
    expect(got!.event!.type_url).toBe('containerd.events.TaskResumed');
    expect(Math.abs(Long.fromValue(got!.timestamp!.seconds).toNumber() - Date.now() / 1000)).toBeLessThan(5);
  });
});

describe('many subscribers and cleanup', () => {
  it('fans out to many subscribers on several connections', async () => {
    const channels = Array.from({ length: 4 }, () => createGrpcClient(eventsService.EventsService, h.grpcSocket));
    const collectors = Array.from({ length: 40 }, (_, i) => new Collector((signal) => channels[i % 4]!.Subscribe({ filters: [] }, { signal })));
    await waitFor('40 subscriptions', () => h.bus.stats.subscribers === 40);
    const publisher = createEventPublisher(h.grpc);
    for (let i = 0; i < 50; i++) await publisher.publish('default', '/tasks/oom', events.TaskOOM, { containerId: `c${i}` });
    for (const c of collectors) {
      const got = await c.waitForCount(50);
      expect(got.map((e) => (unpackEvent<{ containerId: string }>(e.event) ?? { containerId: '' }).containerId)).toEqual(
        Array.from({ length: 50 }, (_, i) => `c${i}`),
      );
    }
    await Promise.all(collectors.map((c) => c.cancel()));
    await waitFor('subscriptions to go away', () => h.bus.stats.subscribers === 0);
    for (const ch of channels) ch.close();
  });

  it('a cancelled subscriber is removed from the bus and publishing goes on', async () => {
    const kept = await subscribed(h, () => Collector.grpc(h));
    const cancelled = await subscribed(h, () => Collector.grpc(h));
    await cancelled.cancel();
    await waitFor('cancelled subscription to go away', () => h.bus.stats.subscribers === 1);
    expect(cancelled.error).toBeUndefined();
    await createEventPublisher(h.grpc).publish('default', '/after/cancel', events.TaskOOM, {});
    expect((await kept.waitForCount(1)).map((e) => e.topic)).toEqual(['/after/cancel']);
    expect(cancelled.received).toEqual([]);
  });
});
