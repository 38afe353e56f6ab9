/**
 * Random graphs of images, containers, blobs, snapshot chains, leases
 * (live, expired, flat) and gc labels. After one collection exactly the
 * unreachable objects are gone, from the index and from the backends' disks.
 * Reachability is computed here with a plain reference model.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs } from './helpers.js';
import { digestOf } from './backends.js';
import { startGcBed, type GcBed } from './bed.js';

const ITERATIONS = 50;
const SEED = 20261123;

let bed: GcBed;
beforeAll(async () => {
  bed = await startGcBed();
});
afterAll(() => bed.stop());

/** mulberry32: small, seedable, good enough to shuffle test graphs. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    chance: (p: number) => next() < p,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}

/** A node of the model: `b:<i>` for blobs, `s:<name>` for snapshots. */
type Node = string;

interface Model {
  edges: Map<Node, Node[]>; // label references
  parents: Map<Node, Node>; // snapshot parent
  fullRoots: Node[];
  flatRoots: Node[];
}

function reachable(m: Model): Set<Node> {
  const seen = new Set<Node>();
  const walk = (start: Node[], follow: (n: Node) => Node[]) => {
    const stack = [...start];
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n) && !start.includes(n)) continue;
      seen.add(n);
      for (const next of follow(n)) if (!seen.has(next)) stack.push(next);
    }
  };
  const parentOf = (n: Node) => (m.parents.has(n) ? [m.parents.get(n)!] : []);
  walk(m.fullRoots, (n) => [...(m.edges.get(n) ?? []), ...parentOf(n)]);
  // Flat roots keep snapshot parents only; starting from the full set keeps this independent of order.
  const flatSeen = new Set<Node>();
  const stack = [...m.flatRoots];
  while (stack.length) {
    const n = stack.pop()!;
    if (flatSeen.has(n)) continue;
    flatSeen.add(n);
    stack.push(...parentOf(n));
  }
  return new Set([...seen, ...flatSeen]);
}

describe('GC property', () => {
  it(`removes exactly the unreachable objects in ${ITERATIONS} random graphs`, async () => {
    const { h, cs, snap, core } = bed;
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const rnd = prng(SEED + iter);
      const nsName = `prop-${iter}`;
      const ns = inNs(nsName);
      const m: Model = { edges: new Map(), parents: new Map(), fullRoots: [], flatRoots: [] };
      const addEdge = (from: Node, to: Node) => m.edges.set(from, [...(m.edges.get(from) ?? []), to]);

      // Blobs, with labels pointing at earlier blobs (and later at snapshots); written in parallel.
      const blobs: { node: Node; digest: string }[] = [];
      const writes: Promise<string>[] = [];
      for (let i = 0, n = rnd.int(3, 10); i < n; i++) {
        const data = Buffer.from(`iteration ${iter} blob ${i}`);
        const labels: Record<string, string> = {};
        if (blobs.length && rnd.chance(0.4)) {
          const target = rnd.pick(blobs);
          labels[`containerd.io/gc.ref.content.${i}`] = target.digest;
          addEdge(`b:${i}`, target.node);
        }
        if (rnd.chance(0.1)) {
          labels['containerd.io/gc.root'] = 'x';
          m.fullRoots.push(`b:${i}`);
        }
        blobs.push({ node: `b:${i}`, digest: digestOf(data) });
        writes.push(core.writeBlob(ns, `blob-${i}`, data, labels));
      }
      await Promise.all(writes);

      // Snapshot chains and active snapshots on top.
      const snaps: { node: Node; name: string; backendKey: string; committed: boolean }[] = [];
      const chains = Array.from({ length: rnd.int(1, 3) }, (_, c) => Array.from({ length: rnd.int(1, 3) }, (_, k) => `chain${c}-${k}`));
      await Promise.all(
        chains.map(async (names) => {
          let parent: (typeof snaps)[number] | undefined;
          for (const name of names) {
            const backendKey = await core.layer(ns, 'snap', name, parent?.name ?? '');
            const node = `s:${name}`;
            if (parent) m.parents.set(node, parent.node);
            parent = { node, name, backendKey, committed: true };
            snaps.push(parent);
          }
        }),
      );
      snaps.sort((a, b) => a.name.localeCompare(b.name));
      const committed = snaps.filter((s) => s.committed);
      for (let j = 0, n = rnd.int(0, 3); j < n; j++) {
        const parent = rnd.chance(0.8) ? rnd.pick(committed) : undefined;
        const name = `active${j}`;
        const backendKey = await core.prepare(ns, 'snap', name, parent?.name ?? '');
        if (parent) m.parents.set(`s:${name}`, parent.node);
        snaps.push({ node: `s:${name}`, name, backendKey, committed: false });
      }

      // Labels between blobs and snapshots, and gc.root on snapshots.
      for (const s of snaps) {
        const labels: Record<string, string> = {};
        if (rnd.chance(0.3)) {
          const b = rnd.pick(blobs);
          labels['containerd.io/gc.ref.content'] = b.digest;
          addEdge(s.node, b.node);
        }
        if (rnd.chance(0.08)) {
          labels['containerd.io/gc.root'] = 'x';
          m.fullRoots.push(s.node);
        }
        if (Object.keys(labels).length) await h.clients.snapshots.Update({ snapshotter: 'snap', info: { name: s.name, labels } }, ns);
      }
      for (const b of blobs) {
        if (!rnd.chance(0.2)) continue;
        const s = rnd.pick(snaps);
        await h.clients.content.Update(
          { info: { digest: b.digest, labels: { 'containerd.io/gc.ref.snapshot.snap/x': s.name } }, updateMask: { paths: ['labels.containerd.io/gc.ref.snapshot.snap/x'] } },
          ns,
        );
        addEdge(b.node, s.node);
      }

      // Images and containers.
      for (let i = 0, n = rnd.int(0, 2); i < n; i++) {
        const target = rnd.pick(blobs);
        const labels: Record<string, string> = {};
        m.fullRoots.push(target.node);
        if (rnd.chance(0.5)) {
          const other = rnd.pick(blobs);
          labels['containerd.io/gc.ref.content.extra'] = other.digest;
          m.fullRoots.push(other.node);
        }
        await h.clients.images.Create({ image: { name: `img-${i}`, labels, target: { mediaType: 'm', digest: target.digest, size: 1 } } }, ns);
      }
      for (let i = 0, n = rnd.int(0, 2); i < n; i++) {
        const s = rnd.pick(snaps);
        m.fullRoots.push(s.node);
        await h.clients.containers.Create(
          { container: { id: `ctr-${i}`, runtime: { name: 'rt' }, spec: { type_url: 'spec', value: new Uint8Array() }, snapshotter: 'snap', snapshotKey: s.name } },
          ns,
        );
      }

      // Leases: live, expired or flat, holding random blobs and snapshots.
      for (let i = 0, n = rnd.int(0, 3); i < n; i++) {
        const expired = rnd.chance(0.3);
        const flat = rnd.chance(0.4);
        const labels: Record<string, string> = {
          'containerd.io/gc.expire': new Date(Date.now() + (expired ? -3600_000 : 3600_000)).toISOString(),
        };
        if (flat) labels['containerd.io/gc.flat'] = 'true';
        await h.clients.leases.Create({ id: `lease-${i}`, labels }, ns);
        for (let k = 0, count = rnd.int(1, 3); k < count; k++) {
          const useBlob = rnd.chance(0.5);
          const node = useBlob ? rnd.pick(blobs) : rnd.pick(snaps);
          const resource = useBlob
            ? { id: (node as (typeof blobs)[number]).digest, type: 'content' }
            : { id: (node as (typeof snaps)[number]).name, type: 'snapshots/snap' };
          await h.clients.leases.AddResource({ id: `lease-${i}`, resource }, ns);
          if (!expired) (flat ? m.flatRoots : m.fullRoots).push(node.node);
        }
      }

      const stats = await h.clients.gc.Collect({});
      expect(stats.errors, `iteration ${iter}`).toEqual([]);
      const live = reachable(m);

      const exists = (p: Promise<unknown>) => p.then(() => true, () => false);
      const blobStates = await Promise.all(
        blobs.map(async (b) => ({
          iter,
          node: b.node,
          inIndex: await exists(h.clients.content.Info({ digest: b.digest }, ns)),
          onDisk: existsSync(join(cs.root, 'blobs', 'sha256', b.digest.slice(7))),
        })),
      );
      expect(blobStates).toEqual(blobs.map((b) => ({ iter, node: b.node, inIndex: live.has(b.node), onDisk: live.has(b.node) })));
      const snapStates = await Promise.all(
        snaps.map(async (s) => ({
          iter,
          node: s.node,
          inIndex: await exists(h.clients.snapshots.Stat({ snapshotter: 'snap', key: s.name }, ns)),
          onDisk: existsSync(snap.dirOf(s.backendKey)),
        })),
      );
      expect(snapStates).toEqual(snaps.map((s) => ({ iter, node: s.node, inIndex: live.has(s.node), onDisk: live.has(s.node) })));
    }
  }, 120_000);
});
