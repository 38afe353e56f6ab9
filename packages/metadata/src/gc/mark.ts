/**
 * The mark phase: everything reachable from the roots.
 *
 * Roots: non-expired leases with what is attached to them, images (target +
 * label refs), containers (snapshot + label refs), content and snapshots
 * labelled gc.root, and ingests that have not expired. References are
 * followed through gc.ref labels, snapshot parents and ingests' digests.
 * A gc.flat lease protects what is attached to it, and snapshot parents, but
 * not what their labels reference.
 */
import { GC_EXPIRE, GC_FLAT, GC_ROOT, gcContentRefs, gcSnapshotRefs } from '@boxd/api';
import type { Stores } from '../store/db.js';
import type { Labels } from '../store/records.js';

export type GcNode =
  | { type: 'content'; ns: string; digest: string }
  | { type: 'snapshot'; ns: string; snapshotter: string; key: string }
  | { type: 'ingest'; ns: string; ref: string }
  | { type: 'lease'; ns: string; id: string };

export function nodeId(node: GcNode): string {
  switch (node.type) {
    case 'content':
      return JSON.stringify(['c', node.ns, node.digest]);
    case 'snapshot':
      return JSON.stringify(['s', node.ns, node.snapshotter, node.key]);
    case 'ingest':
      return JSON.stringify(['i', node.ns, node.ref]);
    case 'lease':
      return JSON.stringify(['l', node.ns, node.id]);
  }
}

export const contentNode = (ns: string, digest: string): GcNode => ({ type: 'content', ns, digest });
export const snapshotNode = (ns: string, snapshotter: string, key: string): GcNode => ({ type: 'snapshot', ns, snapshotter, key });
export const ingestNode = (ns: string, ref: string): GcNode => ({ type: 'ingest', ns, ref });
export const leaseNode = (ns: string, id: string): GcNode => ({ type: 'lease', ns, id });

/** A lease stops protecting once its gc.expire time has passed; an unparsable time never expires it. */
export function leaseExpired(labels: Labels, now: number): boolean {
  const expire = labels[GC_EXPIRE];
  if (!expire) return false;
  const at = Date.parse(expire);
  return !Number.isNaN(at) && at < now;
}

export function mark(stores: Stores, now: number): Set<string> {
  const full = new Set<string>();
  const flat = new Set<string>();
  const queue: { node: GcNode; flat: boolean }[] = [];

  const visit = (node: GcNode, isFlat = false) => {
    const id = nodeId(node);
    // A node first reached flat is expanded again when reached in full.
    if (full.has(id) || (isFlat && flat.has(id))) return;
    (isFlat ? flat : full).add(id);
    queue.push({ node, flat: isFlat });
  };
  const visitLabelRefs = (ns: string, labels: Labels) => {
    for (const digest of gcContentRefs(labels)) visit(contentNode(ns, digest));
    for (const ref of gcSnapshotRefs(labels)) visit(snapshotNode(ns, ref.snapshotter, ref.key));
  };

  markRoots(stores, now, visit, visitLabelRefs);

  while (queue.length > 0) {
    const { node, flat: isFlat } = queue.pop()!;
    if (node.type === 'content') {
      const record = stores.content.get([node.ns, node.digest]);
      if (record && !isFlat) visitLabelRefs(node.ns, record.labels);
    } else if (node.type === 'snapshot') {
      const record = stores.snapshots.get([node.ns, node.snapshotter, node.key]);
      if (!record) continue;
      if (record.parent) visit(snapshotNode(node.ns, node.snapshotter, record.parent), isFlat);
      if (!isFlat) visitLabelRefs(node.ns, record.labels);
    } else if (node.type === 'ingest') {
      const record = stores.ingests.get([node.ns, node.ref]);
      if (record?.expected) visit(contentNode(node.ns, record.expected));
      if (record?.committing) visit(contentNode(node.ns, record.committing));
    }
  }
  return new Set([...full, ...flat]);
}

type Visit = (node: GcNode, flat?: boolean) => void;

function markRoots(stores: Stores, now: number, visit: Visit, visitLabelRefs: (ns: string, labels: Labels) => void): void {
  for (const { key, value } of stores.leases.getRange({})) {
    const [ns, id] = key as string[];
    if (leaseExpired(value.labels, now)) continue;
    visit(leaseNode(ns!, id!));
    const isFlat = Object.hasOwn(value.labels, GC_FLAT);
    for (const resource of stores.leaseResources.getKeys({ start: [ns!, id!] })) {
      const [rns, rid, type, ref] = resource as string[];
      if (rns !== ns || rid !== id) break;
      if (type === 'content') visit(contentNode(ns!, ref!), isFlat);
      else if (type === 'ingests') visit(ingestNode(ns!, ref!));
      else if (type!.startsWith('snapshots/')) visit(snapshotNode(ns!, type!.slice('snapshots/'.length), ref!), isFlat);
    }
  }
  for (const { key, value } of stores.images.getRange({})) {
    const [ns] = key as string[];
    visit(contentNode(ns!, value.target.digest));
    visitLabelRefs(ns!, value.labels);
  }
  for (const { key, value } of stores.containers.getRange({})) {
    const [ns] = key as string[];
    if (value.snapshotter) visit(snapshotNode(ns!, value.snapshotter, value.snapshotKey));
    visitLabelRefs(ns!, value.labels);
  }
  for (const { key, value } of stores.content.getRange({})) {
    const [ns, digest] = key as string[];
    if (Object.hasOwn(value.labels, GC_ROOT)) visit(contentNode(ns!, digest!));
  }
  for (const { key, value } of stores.snapshots.getRange({})) {
    const [ns, snapshotter, name] = key as string[];
    if (Object.hasOwn(value.labels, GC_ROOT)) visit(snapshotNode(ns!, snapshotter!, name!));
  }
  for (const { key, value } of stores.ingests.getRange({})) {
    const [ns, ref] = key as string[];
    if (value.expiresAt !== undefined && value.expiresAt > now) visit(ingestNode(ns!, ref!));
  }
}
