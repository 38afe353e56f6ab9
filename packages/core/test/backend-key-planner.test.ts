import { describe, expect, it } from 'vitest';
import Long from 'long';
import type { boxdMetadata } from '@boxd/api';
import { BackendKeyPlanner } from '../src/services/backend-key-planner.js';

const answer = (over: Partial<boxdMetadata.BackendSnapshot>): boxdMetadata.BackendSnapshot => ({
  snapshotter: 'overlayfs',
  key: '',
  parent: '',
  labels: {},
  reserved: [],
  reservationTtlMs: 0,
  ...over,
});
const seqs = (...n: number[]) => n.map((x) => Long.fromNumber(x, true));

describe('BackendKeyPlanner', () => {
  it('plans only with a reservation and a known parent, each reservation once', () => {
    const p = new BackendKeyPlanner();
    expect(p.plan('ns', 'overlayfs', 'c0', '', {})).toBeUndefined();
    expect(p.reserveCount('overlayfs')).toBe(16);
    // Asked for already: not again until the answer comes.
    expect(p.reserveCount('overlayfs')).toBe(0);
    p.learn('ns', 'overlayfs', 'base', 16, answer({ key: 'ns/1/c0', parent: 'ns/0/base', reserved: seqs(2, 3), reservationTtlMs: 60_000 }));
    expect(p.plan('ns', 'overlayfs', 'c1', 'other', {})).toBeUndefined();
    expect(p.plan('', 'overlayfs', 'c1', 'base', {})).toBeUndefined();
    expect(p.plan('ns', 'native', 'c1', 'base', {})).toBeUndefined();
    const labels = { 'containerd.io/snapshot/x': 'y', 'containerd.io/snapshot.ref': 'r', mine: 'no' };
    expect(p.plan('ns', 'overlayfs', 'c1', 'base', labels)).toEqual({
      key: 'ns/2/c1',
      parent: 'ns/0/base',
      labels: { 'containerd.io/snapshot/x': 'y', 'containerd.io/snapshot.ref': 'r' },
    });
    expect(p.plan('ns', 'overlayfs', 'c2', '', {})).toEqual({ key: 'ns/3/c2', parent: '', labels: {} });
    expect(p.plan('ns', 'overlayfs', 'c3', '', {})).toBeUndefined();
    // Few left and none asked for: the next create asks.
    expect(p.reserveCount('overlayfs')).toBe(16);
  });

  it('uses a reservation for half its time to live at most', async () => {
    const p = new BackendKeyPlanner();
    p.reserveCount('overlayfs');
    p.learn('ns', 'overlayfs', '', 16, answer({ reserved: seqs(7, 8), reservationTtlMs: 60 }));
    expect(p.plan('ns', 'overlayfs', 'a', '', {})?.key).toBe('ns/7/a');
    await new Promise((r) => setTimeout(r, 40));
    expect(p.plan('ns', 'overlayfs', 'b', '', {})).toBeUndefined();
  });

  it('forgets a parent and reservations on demand, and a failed create frees what it asked for', () => {
    const p = new BackendKeyPlanner();
    expect(p.reserveCount('overlayfs')).toBe(16);
    p.learn('ns', 'overlayfs', 'base', 16, undefined);
    expect(p.reserveCount('overlayfs')).toBe(16);
    p.learn('ns', 'overlayfs', 'base', 16, answer({ parent: 'ns/4/base', reserved: seqs(5, 6), reservationTtlMs: 60_000 }));
    p.forgetParent('ns', 'overlayfs', 'base');
    expect(p.plan('ns', 'overlayfs', 'c', 'base', {})).toBeUndefined();
    p.dropReservations('overlayfs');
    expect(p.plan('ns', 'overlayfs', 'c', '', {})).toBeUndefined();
  });

  it('checks what the index recorded against the plan', () => {
    const plan = { key: 'ns/2/c', parent: 'ns/1/p', labels: { 'containerd.io/snapshot/x': 'y' } };
    const same = answer({ key: 'ns/2/c', parent: 'ns/1/p', labels: { 'containerd.io/snapshot/x': 'y' } });
    expect(BackendKeyPlanner.matches(plan, same)).toBe(true);
    expect(BackendKeyPlanner.matches(plan, { ...same, parent: 'ns/9/p' })).toBe(false);
    expect(BackendKeyPlanner.matches(plan, { ...same, key: 'ns/3/c' })).toBe(false);
    expect(BackendKeyPlanner.matches(plan, { ...same, labels: {} })).toBe(false);
    expect(BackendKeyPlanner.matches(plan, { ...same, labels: { 'containerd.io/snapshot/x': 'z' } })).toBe(false);
  });
});
