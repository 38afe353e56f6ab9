/**
 * kill -9 in the middle of a stream of changes leaves a store that is
 * consistent with itself and with the snapshot directories.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Code, isCode } from '@boxd/api';
import { Kind, Snapshotter } from '../src/index.js';
import { plainBackend } from './plain-backend.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-crash-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Builds layer after layer, with views and removals in between, until killed.
const WORKER = `
import { Snapshotter } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
const backend = {
  populate: (d) => mkdir(join(d, 'fs')),
  mounts: () => [],
  usage: async () => ({ size: 0n, inodes: 1n }),
};
const sn = await Snapshotter.open({ root: process.argv[2], backend });
let parent = [...sn.walk(['kind==committed'])].map((i) => i.key).sort().pop() ?? '';
for (let i = 0; ; i++) {
  const name = 'layer-' + String(Date.now()).padStart(15, '0') + '-' + i;
  await sn.prepare(name + '-active', parent, { i: String(i) });
  await sn.view(name + '-view', parent);
  await sn.commit(name, name + '-active');
  await sn.remove(name + '-view');
  parent = name;
  if (i === 20) process.stdout.write('going\\n');
}
`;

async function runAndKill(root: string, afterMs: number): Promise<void> {
  const script = join(dir, 'worker.mjs');
  await writeFile(script, WORKER);
  const child = spawn(process.execPath, [script, root], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  await new Promise((r) => setTimeout(r, afterMs));
  child.kill('SIGKILL');
  await once(child, 'exit');
}

async function checkConsistent(root: string): Promise<void> {
  const sn = await Snapshotter.open({ root, backend: plainBackend() });
  try {
    const all = [...sn.walk()];
    expect(all.length).toBeGreaterThan(20);
    const byKey = new Map(all.map((i) => [i.key, i]));
    for (const info of all) {
      expect(existsSync(sn.dirs.dir(info.id)), `directory of ${info.key}`).toBe(true);
      if (info.parent) expect(byKey.get(info.parent)?.kind, `parent of ${info.key}`).toBe(Kind.COMMITTED);
    }
    // Every parent knows its children: none can be removed.
    const parents = new Set(all.map((i) => i.parent).filter(Boolean));
    for (const parent of parents) {
      await expect(sn.remove(parent)).rejects.toSatisfy((e) => isCode(e, Code.FAILED_PRECONDITION));
    }
    await sn.cleanup();
    const ids = new Set(all.map((i) => String(i.id)));
    expect((await readdir(sn.dirs.base)).filter((n) => !ids.has(n))).toEqual([]);
    // And it keeps working.
    const top = all.filter((i) => i.kind === Kind.COMMITTED).map((i) => i.key).sort().pop()!;
    await sn.prepare('after-crash', top);
    expect(sn.stat('after-crash').parent).toBe(top);
  } finally {
    await sn.close();
  }
}

it('survives kill -9 at varying points', async () => {
  for (const afterMs of [0, 37, 101]) {
    const root = join(dir, `r${afterMs}`);
    await runAndKill(root, afterMs);
    await checkConsistent(root);
  }
}, 60_000);
