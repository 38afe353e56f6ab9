/** The ttrpc socket: shims Forward there, and the core may use Events over ttrpc too. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Long from 'long';
import { Code, events, timestampFromDate, type BoxdError } from '@boxd/api';
import { createEventForwarder, createEventPublisher, packEvent, unpackEvent } from '../src/index.js';
import { cancelCollectors, Collector, startHarness, subscribed, ttrpcClients, waitFor, type Harness } from './helpers.js';

let h: Harness;
let clients: Awaited<ReturnType<typeof ttrpcClients>>;
beforeAll(async () => {
  h = await startHarness();
  clients = await ttrpcClients(h.ttrpcSocket);
});
afterEach(async () => {
  await cancelCollectors(h);
});
afterAll(async () => {
  clients?.conn.close();
  await h?.stop();
});

describe('containerd.services.events.ttrpc.v1.Events/Forward', () => {
  it('takes a shim task event sequence and delivers it to gRPC subscribers', async () => {
    const sub = await subscribed(h, () => Collector.grpc(h, ['namespace==default,topic~="^/tasks/"']));
    // As containerd-shim-runc-v2 sends them: namespace in the ttrpc metadata and in the envelope.
    const shim = createEventForwarder(clients.shim);
    const options = { timeoutMs: 5000 };
    await shim.publish('default', '/tasks/create', events.TaskCreate, { containerId: 't1', bundle: '/run/t1', pid: 100 }, options);
    await shim.publish('default', '/tasks/start', events.TaskStart, { containerId: 't1', pid: 100 }, options);
    await shim.publish('default', '/tasks/exit', events.TaskExit, { containerId: 't1', id: 't1', pid: 100, exitStatus: 3, exitedAt: timestampFromDate() }, options);
    await shim.publish('default', '/tasks/delete', events.TaskDelete, { containerId: 't1', pid: 100, exitStatus: 3 }, options);
    const got = await sub.waitForCount(4);
    expect(got.map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    expect(unpackEvent(got[2]!.event)).toMatchObject({ containerId: 't1', exitStatus: 3 });
  });

  it('keeps the envelope namespace and timestamp; the metadata does not override them', async () => {
    const sub = await subscribed(h, () => Collector.grpc(h, ['topic=="/tasks/oom"']));
    const timestamp = { seconds: Long.fromString('1500000000'), nanos: 42 };
    await clients.shim.Forward(
      { envelope: { timestamp, namespace: 'from-envelope', topic: '/tasks/oom', event: packEvent(events.TaskOOM, { containerId: 'o' }) } },
      { namespace: 'from-metadata' },
    );
    const [got] = await sub.waitForCount(1);
    expect(got!.namespace).toBe('from-envelope');
    expect(got!.timestamp!.seconds.toString()).toBe('1500000000');
    expect(got!.timestamp!.nanos).toBe(42);
  });

  it('answers invalid envelopes with INVALID_ARGUMENT, as containerd does', async () => {
    const event = packEvent(events.TaskOOM, { containerId: 'o' });
    const call = (envelope: Parameters<typeof clients.shim.Forward>[0]['envelope']) =>
      clients.shim.Forward({ envelope }, { namespace: 'default' }).then(
        () => ({ code: Code.OK, message: '' }),
        (err: BoxdError) => ({ code: err.code, message: err.message }),
      );
    expect(await call({ timestamp: timestampFromDate(), topic: '/tasks/oom', event })).toEqual({
      code: Code.INVALID_ARGUMENT,
      message: 'event envelope has invalid namespace: identifier must not be empty',
    });
    expect(await call({ namespace: 'default', topic: '/tasks/oom', event })).toEqual({
      code: Code.INVALID_ARGUMENT,
      message: 'timestamp must be set on forwarded event',
    });
    expect((await call({ timestamp: timestampFromDate(), namespace: 'default', topic: 'tasks/oom', event })).code).toBe(Code.INVALID_ARGUMENT);
    expect(await call({ timestamp: timestampFromDate(), namespace: 'default', topic: '/tasks/oom', event })).toEqual({ code: Code.OK, message: '' });
  });
});

describe('containerd.services.events.v1.Events over ttrpc', () => {
  it('publishes with the ttrpc namespace header and streams Subscribe until the connection closes', async () => {
    // ttrpc has no way to cancel one stream: a subscriber leaves by closing its connection.
    const own = await ttrpcClients(h.ttrpcSocket);
    const viaTtrpc = await subscribed(h, () => new Collector((signal) => own.events.Subscribe({ filters: ['namespace==tt'] }, { signal })));
    await createEventPublisher(clients.events).publish('tt', '/containers/delete', events.ContainerDelete, { id: 'gone' });
    await createEventPublisher(h.grpc).publish('tt', '/containers/create', events.ContainerCreate, { id: 'new' });
    await createEventPublisher(h.grpc).publish('other', '/containers/create', events.ContainerCreate, { id: 'x' });
    const got = await viaTtrpc.waitForCount(2);
    expect(got.map((e) => `${e.namespace}${e.topic}`)).toEqual(['tt/containers/delete', 'tt/containers/create']);
    await expect(clients.events.Publish({ topic: '/a', event: packEvent(events.TaskOOM, {}) })).rejects.toMatchObject({
      code: Code.FAILED_PRECONDITION,
    });
    own.conn.close();
    await waitFor('ttrpc subscription to go away with its connection', () => h.bus.stats.subscribers === 0);
  });
});
