import { expect, it } from 'vitest';
import { snapshots } from '@boxd/api';
import { codeOf } from '../harness.js';
import type { SuiteContext } from '../suite.js';
import { millis } from './util.js';

const { Kind } = snapshots;

export function lifecycleTests(ctx: SuiteContext): void {
  it('prepares an active snapshot without a parent, and Stat and Mounts report it', async () => {
    const { h } = ctx;
    const key = h.key('lc-root');
    const before = Date.now();
    const mounts = await h.prepare(key, '', { 'suite/prepared': 'yes' });
    expect(mounts.length).toBeGreaterThan(0);
    const info = await h.stat(key);
    expect(info).toMatchObject({ name: key, parent: '', kind: Kind.ACTIVE, labels: { 'suite/prepared': 'yes' } });
    // Clocks may differ by a little between the suite and the endpoint.
    expect(millis(info.createdAt)).toBeGreaterThan(before - 60_000);
    expect(millis(info.updatedAt)).toBeGreaterThanOrEqual(millis(info.createdAt));
    expect(await h.mounts(key)).toEqual(mounts);
  });

  it('commit turns the active key into a committed name: the key is gone, labels are replaced, the parent stays', async () => {
    const { h } = ctx;
    const base = h.key('lc-base');
    await h.prepare(`${base}-a`, '', { 'suite/active-only': 'x' });
    await h.commit(base, `${base}-a`, { 'suite/committed': 'y' });
    expect(await codeOf(h.stat(`${base}-a`))).toBe('NOT_FOUND');
    expect(await h.stat(base)).toMatchObject({ name: base, parent: '', kind: Kind.COMMITTED, labels: { 'suite/committed': 'y' } });

    const child = h.key('lc-child');
    await h.prepare(`${child}-a`, base);
    expect(await h.stat(`${child}-a`)).toMatchObject({ kind: Kind.ACTIVE, parent: base });
    await h.commit(child, `${child}-a`);
    expect(await h.stat(child)).toMatchObject({ name: child, parent: base, kind: Kind.COMMITTED, labels: {} });
  });

  it('views a committed snapshot; Mounts of the view equals what View returned', async () => {
    const { h } = ctx;
    const base = h.key('lv-base');
    await h.layer(base, '');
    const view = h.key('lv-view');
    const mounts = await h.view(view, base, { 'suite/view': '1' });
    expect(mounts.length).toBeGreaterThan(0);
    expect(await h.stat(view)).toMatchObject({ name: view, parent: base, kind: Kind.VIEW, labels: { 'suite/view': '1' } });
    expect(await h.mounts(view)).toEqual(mounts);
    // A view without a parent is an empty read-only snapshot.
    const empty = h.key('lv-empty');
    expect((await h.view(empty)).length).toBeGreaterThan(0);
    expect(await h.stat(empty)).toMatchObject({ kind: Kind.VIEW, parent: '' });
  });

  it('removes views, active and committed snapshots, children before parents', async () => {
    const { h } = ctx;
    const base = h.key('lr-base');
    await h.layer(base, '');
    const active = h.key('lr-active');
    const view = h.key('lr-view');
    await h.prepare(active, base);
    await h.view(view, base);
    for (const key of [active, view, base]) {
      await h.remove(key);
      expect(await codeOf(h.stat(key))).toBe('NOT_FOUND');
    }
    expect(await h.names('lr-')).toEqual([]);
    // The keys are free again.
    await h.prepare(base);
    await h.remove(base);
  });

  it('Cleanup after removals succeeds (or is declared unimplemented)', async () => {
    const { h } = ctx;
    const key = h.key('lcl');
    await h.prepare(key);
    await h.remove(key);
    await h.expectCleanup(ctx.options.cleanup ?? true);
    expect(await codeOf(h.stat(key))).toBe('NOT_FOUND');
  });

  it('concurrent Prepares of one key: exactly one wins, the others get ALREADY_EXISTS', async () => {
    const { h } = ctx;
    const key = h.key('lcc-same');
    const codes = await Promise.all(Array.from({ length: 8 }, () => codeOf(h.prepare(key))));
    expect(codes.filter((c) => c === 'resolved')).toHaveLength(1);
    expect(codes.filter((c) => c === 'ALREADY_EXISTS')).toHaveLength(7);
    await h.remove(key);
  });

  it('concurrent Prepares of distinct keys on one parent all succeed with distinct mounts', async () => {
    const { h } = ctx;
    const base = h.key('lcd-base');
    await h.layer(base, '');
    const keys = Array.from({ length: 8 }, (_, i) => h.key(`lcd-${i}`));
    const mounts = await Promise.all(keys.map((k) => h.prepare(k, base)));
    expect(new Set(mounts.map((m) => JSON.stringify(m))).size).toBe(keys.length);
    expect(await h.names('lcd-', 'kind==active')).toEqual([...keys].sort());
    await Promise.all(keys.map((k) => h.remove(k)));
    await h.remove(base);
  });
}
