/**
 * The bus itself, in process: filter semantics on real encoded events,
 * bounded buffers, unsubscribe. Publishing is synchronous, so what a
 * subscription has buffered right after publish() is exactly what it matched.
 */
import { describe, expect, it } from 'vitest';
import { Code, events, images, isCode, timestampFromNanos, type MessageCodec, type Init } from '@boxd/api';
import { EventBus, packEvent, parseSubscriptionFilters, type Envelope } from '../src/index.js';

let clock = 1_700_000_000_000_000_000n;
function envelope<T>(namespace: string, topic: string, codec: MessageCodec<T>, event: Init<T>): Envelope {
  return { timestamp: timestampFromNanos(clock++), namespace, topic, event: packEvent(codec, event) };
}

const sample: Envelope[] = [
  envelope('default', '/tasks/exit', events.TaskExit, { containerId: 'web', id: 'web', pid: 10, exitStatus: 3 }),
  envelope('k8s.io', '/tasks/exit', events.TaskExit, { containerId: 'db', id: 'exec-1', pid: 11 }),
  envelope('default', '/tasks/create', events.TaskCreate, {
    containerId: 'web',
    bundle: '/run/b',
    io: { stdout: '/fifo/out', terminal: false },
    pid: 12,
  }),
  envelope('default', '/containers/create', events.ContainerCreate, {
    id: 'web',
    image: 'docker.io/library/busybox:latest',
    runtime: { name: 'io.containerd.runc.v2', options: packEvent(events.TaskOOM, { containerId: 'nested' }) },
  }),
  envelope('default', '/namespaces/update', events.NamespaceUpdate, {
    name: 'default',
    labels: { 'containerd.io/defaults/snapshotter': 'native', plain: '' },
  }),
  envelope('default', '/images/create', images.ImageCreate, { name: 'docker.io/library/busybox:latest', labels: {} }),
  // Not an event type containerd can look into, and a type URL it cannot resolve.
  envelope('default', '/custom/a', images.Image, { name: 'docker.io/library/busybox:latest' }),
  { ...envelope('default', '/custom/b', events.TaskOOM, { containerId: 'web' }), event: { type_url: 'type.googleapis.com/containerd.events.TaskOOM', value: events.TaskOOM.encode({ containerId: 'web' }) } },
  { ...envelope('default', '/custom/c', events.TaskOOM, {}), event: { type_url: 'containerd.events.TaskOOM', value: Uint8Array.from([0x0a, 0x05, 0x61]) } },
];

async function matching(...filters: string[]): Promise<string[]> {
  const bus = new EventBus();
  const sub = bus.subscribe(parseSubscriptionFilters(filters));
  for (const env of sample) bus.publish(env);
  sub.close();
  const topics: string[] = [];
  for await (const env of sub) topics.push(`${env.namespace}${env.topic}`);
  return topics;
}

describe('subscription filters', () => {
  it('no filter (or an empty string) matches every event of every namespace', async () => {
    const all = sample.map((e) => `${e.namespace}${e.topic}`);
    expect(await matching()).toEqual(all);
    expect(await matching('')).toEqual(all);
  });

  it('topic and namespace, AND within a string, OR across strings', async () => {
    expect(await matching('topic=="/tasks/exit"')).toEqual(['default/tasks/exit', 'k8s.io/tasks/exit']);
    expect(await matching('topic=="/tasks/exit",namespace==default')).toEqual(['default/tasks/exit']);
    expect(await matching('namespace==k8s.io', 'topic=="/images/create"')).toEqual(['k8s.io/tasks/exit', 'default/images/create']);
    expect(await matching('namespace!=default')).toEqual(['k8s.io/tasks/exit']);
  });

  it('regular expressions match unanchored, RE2 style', async () => {
    expect(await matching('topic~=^/tasks/')).toEqual(['default/tasks/exit', 'k8s.io/tasks/exit', 'default/tasks/create']);
    expect(await matching('topic~=/create$/')).toEqual(['default/tasks/create', 'default/containers/create', 'default/images/create']);
    expect(await matching('namespace~="(?i)K8S"')).toEqual(['k8s.io/tasks/exit']);
  });

  it('event.<field> uses the .proto field names of the decoded event', async () => {
    expect(await matching('event.container_id==web')).toEqual(['default/tasks/exit', 'default/tasks/create']);
    expect(await matching('event.containerId==web')).toEqual([]);
    expect(await matching('event.id==exec-1')).toEqual(['k8s.io/tasks/exit']);
    expect(await matching('event.id')).toEqual(['default/tasks/exit', 'k8s.io/tasks/exit', 'default/containers/create']);
    expect(await matching('topic=="/tasks/exit",event.container_id~=^d')).toEqual(['k8s.io/tasks/exit']);
  });

  it('descends into nested event messages and Anys; labels join the rest of the path', async () => {
    expect(await matching('event.io.stdout=="/fifo/out"')).toEqual(['default/tasks/create']);
    // bools are always present, even when false
    expect(await matching('event.io.terminal==false')).toEqual(['default/tasks/create']);
    expect(await matching('event.runtime.name==io.containerd.runc.v2')).toEqual(['default/containers/create']);
    expect(await matching('event.runtime.options.container_id==nested')).toEqual(['default/containers/create']);
    expect(await matching('event.labels."containerd.io/defaults/snapshotter"==native')).toEqual(['default/namespaces/update']);
    expect(await matching('event.labels."containerd.io/defaults/snapshotter"', 'event.labels.plain')).toEqual(['default/namespaces/update']);
    expect(await matching('event.name~=busybox')).toEqual(['default/images/create']);
  });

  it('numbers, timestamps, repeated fields, non-event types and unresolvable type URLs are absent', async () => {
    expect(await matching('event.pid==10')).toEqual([]);
    expect(await matching('event.pid')).toEqual([]);
    expect(await matching('event.exited_at')).toEqual([]);
    expect(await matching('event.rootfs')).toEqual([]);
    expect(await matching('event.labels')).toEqual([]);
    expect(await matching('event')).toEqual([]);
    // images.Image is a real type, but not an event: containerd cannot look into it either
    expect(await matching('topic~=^/custom/,event.name')).toEqual([]);
    // absent compares as "" for != (containerd's rule)
    expect(await matching('topic~=^/custom/,event.container_id!=web')).toEqual(['default/custom/a', 'default/custom/b', 'default/custom/c']);
  });

  it('a bad filter is INVALID_ARGUMENT', () => {
    for (const bad of ['topic==', 'topic===x', '.topic', 'topic~=(', 'event.=x', '   ']) {
      let err: unknown;
      try {
        parseSubscriptionFilters([bad]);
      } catch (e) {
        err = e;
      }
      expect(isCode(err, Code.INVALID_ARGUMENT), bad).toBe(true);
      expect(String((err as Error).message)).toMatch(/^failed parsing subscription filters: /);
    }
  });
});

describe('bounded subscriber buffers', () => {
  it('drops only the subscriber that overflows, with RESOURCE_EXHAUSTED; others keep everything', async () => {
    const bus = new EventBus({ subscriberBuffer: 4 });
    const slow = bus.subscribe(parseSubscriptionFilters([]));
    const fast = bus.subscribe(parseSubscriptionFilters([]));
    const got: Envelope[] = [];
    for (let i = 0; i < 10; i++) {
      bus.publish(sample[i % sample.length]!);
      const r = await fast.next();
      if (!r.done) got.push(r.value);
    }
    expect(got).toHaveLength(10);
    expect(bus.stats).toEqual({ published: 10, subscribers: 1, dropped: 1 });
    expect(slow.closed).toBe(true);
    await expect(slow.next()).rejects.toMatchObject({ code: Code.RESOURCE_EXHAUSTED, message: expect.stringMatching(/too slow.*more than 4 events/) });
    await expect(slow.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it('a subscriber exactly at its limit is kept and gets every event', async () => {
    const bus = new EventBus({ subscriberBuffer: 3 });
    const sub = bus.subscribe(parseSubscriptionFilters([]));
    for (let i = 0; i < 3; i++) bus.publish(sample[i]!);
    expect(bus.stats.dropped).toBe(0);
    const topics = [];
    for (let i = 0; i < 3; i++) topics.push(((await sub.next()).value as Envelope).topic);
    expect(topics).toEqual(['/tasks/exit', '/tasks/exit', '/tasks/create']);
  });

  it('rejects a non-positive buffer size', () => {
    expect(() => new EventBus({ subscriberBuffer: 0 })).toThrow(/positive integer/);
    expect(() => new EventBus({ subscriberBuffer: 1.5 })).toThrow(/positive integer/);
  });
});

describe('unsubscribing', () => {
  it('abort signal, break out of for-await, and closing the bus all remove the subscription', async () => {
    const bus = new EventBus();
    const controller = new AbortController();
    const aborted = bus.subscribe(parseSubscriptionFilters([]), { signal: controller.signal });
    const pending = aborted.next();
    controller.abort();
    await expect(pending).resolves.toEqual({ done: true, value: undefined });

    const looped = bus.subscribe(parseSubscriptionFilters([]));
    bus.publish(sample[0]!);
    for await (const env of looped) {
      expect(env.topic).toBe('/tasks/exit');
      break;
    }
    expect(bus.stats.subscribers).toBe(0);

    const open = bus.subscribe(parseSubscriptionFilters([]));
    bus.close();
    await expect(open.next()).rejects.toMatchObject({ code: Code.UNAVAILABLE, message: 'events bus is shutting down' });
    const late = bus.subscribe(parseSubscriptionFilters([]));
    await expect(late.next()).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    expect(bus.stats.subscribers).toBe(0);
  });
});
