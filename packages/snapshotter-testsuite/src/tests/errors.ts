import { beforeAll, expect, it } from 'vitest';
import { codeOf, type SnapshotTree } from '../harness.js';
import type { SuiteContext } from '../suite.js';

export function errorTests(ctx: SuiteContext): void {
  // One small tree shared by the error cases.
  let names: SnapshotTree;
  beforeAll(async () => {
    names = await ctx.h.tree('er-');
  });

  it('ALREADY_EXISTS when a key or name is reused, whatever its kind', async () => {
    const { h } = ctx;
    for (const key of Object.values(names)) {
      expect(await codeOf(h.prepare(key)), `Prepare ${key}`).toBe('ALREADY_EXISTS');
      expect(await codeOf(h.view(key, names.bottom)), `View ${key}`).toBe('ALREADY_EXISTS');
    }
  });

  it('NOT_FOUND for a missing parent, and the key stays free', async () => {
    const { h } = ctx;
    const key = h.key('er-orphan');
    expect(await codeOf(h.prepare(key, h.key('er-missing')))).toBe('NOT_FOUND');
    expect(await codeOf(h.view(key, h.key('er-missing')))).toBe('NOT_FOUND');
    await h.prepare(key);
    await h.remove(key);
  });

  it('INVALID_ARGUMENT for a parent that is not committed', async () => {
    const { h } = ctx;
    expect(await codeOf(h.prepare(h.key('er-on-active'), names.active))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(h.prepare(h.key('er-on-view'), names.view))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(h.view(h.key('er-view-on-active'), names.active))).toBe('INVALID_ARGUMENT');
    expect(await h.names('er-on-')).toEqual([]);
  });

  it('NOT_FOUND for unknown keys on Stat, Mounts, Usage, Remove, Update and Commit', async () => {
    const { h } = ctx;
    const missing = h.key('er-nothing');
    expect(await codeOf(h.stat(missing))).toBe('NOT_FOUND');
    expect(await codeOf(h.mounts(missing))).toBe('NOT_FOUND');
    expect(await codeOf(h.usage(missing))).toBe('NOT_FOUND');
    expect(await codeOf(h.remove(missing))).toBe('NOT_FOUND');
    expect(await codeOf(h.update(missing, { a: 'b' }))).toBe('NOT_FOUND');
    expect(await codeOf(h.commit(h.key('er-new-name'), missing))).toBe('NOT_FOUND');
  });

  it('FAILED_PRECONDITION when committing a committed snapshot or a view', async () => {
    const { h } = ctx;
    expect(await codeOf(h.commit(h.key('er-recommit'), names.top))).toBe('FAILED_PRECONDITION');
    expect(await codeOf(h.commit(h.key('er-view-commit'), names.view))).toBe('FAILED_PRECONDITION');
    expect(await h.names('er-recommit')).toEqual([]);
    expect(await h.names('er-view-commit')).toEqual([]);
  });

  it('ALREADY_EXISTS when committing to an existing name; the active snapshot survives', async () => {
    const { h } = ctx;
    expect(await codeOf(h.commit(names.bottom, names.active))).toBe('ALREADY_EXISTS');
    expect((await h.stat(names.active)).name).toBe(names.active);
  });

  it('FAILED_PRECONDITION for Mounts of a committed snapshot', async () => {
    const { h } = ctx;
    expect(await codeOf(h.mounts(names.top))).toBe('FAILED_PRECONDITION');
    expect(await codeOf(h.mounts(names.bottom))).toBe('FAILED_PRECONDITION');
  });

  it('FAILED_PRECONDITION when removing a snapshot with children', async () => {
    const { h } = ctx;
    expect(await codeOf(h.remove(names.bottom))).toBe('FAILED_PRECONDITION');
    expect(await codeOf(h.remove(names.top))).toBe('FAILED_PRECONDITION');
    expect((await h.stat(names.top)).name).toBe(names.top);
  });

  it('INVALID_ARGUMENT for Update paths other than labels', async () => {
    const { h } = ctx;
    for (const path of ['name', 'parent', 'kind', 'created_at']) {
      expect(await codeOf(h.update(names.active, {}, [path])), path).toBe('INVALID_ARGUMENT');
    }
  });

  it('INVALID_ARGUMENT for a label bigger than 4096 bytes', async () => {
    const { h } = ctx;
    const big = { 'suite/big': 'x'.repeat(4097) };
    expect(await codeOf(h.prepare(h.key('er-big'), '', big))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(h.update(names.active, big, ['labels.suite/big']))).toBe('INVALID_ARGUMENT');
    expect(await h.names('er-big')).toEqual([]);
  });

  it('the error tree tears down children first', async () => {
    const { h } = ctx;
    for (const key of [names.active, names.view, names.top, names.bottom]) await h.remove(key);
    expect(await h.names('er-')).toEqual([]);
  });
}
