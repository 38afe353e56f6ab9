import { beforeAll, expect, it } from 'vitest';
import { codeOf, type SnapshotTree } from '../harness.js';
import type { SuiteContext } from '../suite.js';
import { millis } from './util.js';

export function labelAndListTests(ctx: SuiteContext): void {
  it('Update with labels.<k> sets or deletes one label and keeps the others', async () => {
    const { h } = ctx;
    const key = h.key('lb-one');
    await h.prepare(key, '', { keep: 'k', change: 'old', drop: 'd' });
    const before = await h.stat(key);
    const info = await h.update(key, { change: 'new', ignored: 'x' }, ['labels.change', 'labels.drop', 'labels.added']);
    expect(info.labels).toEqual({ keep: 'k', change: 'new' });
    const stat = await h.stat(key);
    expect(stat.labels).toEqual({ keep: 'k', change: 'new' });
    expect(millis(stat.createdAt)).toBe(millis(before.createdAt));
    expect(millis(stat.updatedAt)).toBeGreaterThanOrEqual(millis(before.updatedAt));
    await h.remove(key);
  });

  it('Update with mask labels, or with no mask, replaces all labels', async () => {
    const { h } = ctx;
    const key = h.key('lb-all');
    await h.layer(key, '');
    await h.update(key, { a: '1', b: '2' }, ['labels']);
    expect((await h.stat(key)).labels).toEqual({ a: '1', b: '2' });
    await h.update(key, { c: '3' });
    expect((await h.stat(key)).labels).toEqual({ c: '3' });
    // Label keys may contain dots and slashes: everything after `labels.` is the key.
    await h.update(key, { 'containerd.io/gc.root': 'now' }, ['labels.containerd.io/gc.root']);
    expect((await h.stat(key)).labels).toEqual({ c: '3', 'containerd.io/gc.root': 'now' });
    await h.remove(key);
  });

  describeList(ctx);
}

function describeList(ctx: SuiteContext): void {
  let n: SnapshotTree;
  beforeAll(async () => {
    n = await ctx.h.tree('ls-', {
      bottom: { 'suite.role': 'base', plain: 'yes' },
      active: { plain: 'also', 'suite.role': 'work' },
    });
  });

  it('List without filters returns every snapshot', async () => {
    const { h } = ctx;
    const { infos } = await ctx.h.list();
    const ours = infos.map((i) => i.name).filter((name) => name.startsWith(h.prefix + 'ls-'));
    expect(ours.sort()).toEqual([n.active, n.bottom, n.top, n.view].sort());
    const active = infos.find((i) => i.name === n.active)!;
    expect(active).toMatchObject({ parent: n.top, labels: { plain: 'also', 'suite.role': 'work' } });
  });

  it('List filters by name, kind and parent', async () => {
    const { h } = ctx;
    expect(await h.names('ls-', `name==${n.top}`)).toEqual([n.top]);
    expect(await h.names('ls-', 'kind==committed')).toEqual([n.bottom, n.top].sort());
    expect(await h.names('ls-', 'kind==active')).toEqual([n.active]);
    expect(await h.names('ls-', 'kind==view')).toEqual([n.view]);
    expect(await h.names('ls-', `parent==${n.top}`)).toEqual([n.active, n.view].sort());
    expect(await h.names('ls-', `parent==${n.bottom}`)).toEqual([n.top]);
  });

  it('List filters by labels: quoted keys, presence, inequality', async () => {
    const { h } = ctx;
    expect(await h.names('ls-', 'labels."suite.role"==base')).toEqual([n.bottom]);
    expect(await h.names('ls-', 'labels.plain')).toEqual([n.active, n.bottom].sort());
    expect(await h.names('ls-', 'labels.plain==yes')).toEqual([n.bottom]);
    expect(await h.names('ls-', 'labels.plain~=^al')).toEqual([n.active]);
    // An absent label compares as empty: `!=` selects snapshots without it.
    expect(await h.names('ls-', 'labels.plain!=yes')).toEqual([n.active, n.top, n.view].sort());
  });

  it('List ORs several filter strings and ANDs the selectors of one', async () => {
    const { h } = ctx;
    expect(await h.names('ls-', 'kind==view', 'kind==active')).toEqual([n.active, n.view].sort());
    expect(await h.names('ls-', `kind==committed,parent==${n.bottom}`)).toEqual([n.top]);
    expect(await h.names('ls-', 'kind==committed,labels.plain')).toEqual([n.bottom]);
  });

  it('List rejects a malformed filter', async () => {
    // containerd 1.6 answers UNKNOWN (its parse error carries no errdefs class);
    // INVALID_ARGUMENT is the documented code and what boxd answers.
    expect(['INVALID_ARGUMENT', 'UNKNOWN']).toContain(await codeOf(ctx.h.list(['labels."unterminated'])));
  });

  it('the list tree tears down', async () => {
    const { h } = ctx;
    for (const key of [n.active, n.view, n.top, n.bottom]) await h.remove(key);
    expect(await h.names('ls-')).toEqual([]);
  });
}
