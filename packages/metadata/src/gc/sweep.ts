/**
 * The metadata half of a collection: mark and remove every unreachable
 * record in one write transaction. The backends are cleaned afterwards
 * (backend-sweep.ts) by removing whatever no record references any more.
 */
import type { Stores } from '../store/db.js';
import { dropContent, dropSnapshot } from '../store/mutations.js';
import { expireReservations } from '../services/key-reservations.js';
import { contentNode, ingestNode, leaseNode, mark, snapshotNode, nodeId } from './mark.js';

export interface SweepStats {
  content: number;
  ingests: number;
  snapshots: number;
  leases: number;
}

export interface SweepOptions {
  now: number;
  /** Retired active snapshots older than this lose their protection. */
  retiredGraceMs: number;
  /** Reserved backend key sequence numbers older than this are dropped. */
  reservationTtlMs: number;
}

/** Call inside a write transaction. */
export function sweepRecords(stores: Stores, options: SweepOptions): SweepStats {
  const marked = mark(stores, options.now);
  const live = (id: string) => marked.has(id);
  const stats: SweepStats = { content: 0, ingests: 0, snapshots: 0, leases: 0 };

  for (const { key } of [...stores.leases.getRange({})]) {
    const [ns, id] = key as string[];
    if (live(nodeId(leaseNode(ns!, id!)))) continue;
    stores.leases.removeSync(key);
    for (const resource of [...stores.leaseResources.getKeys({ start: [ns!, id!] })]) {
      const [rns, rid] = resource as string[];
      if (rns !== ns || rid !== id) break;
      stores.leaseResources.removeSync(resource);
    }
    stats.leases++;
  }
  for (const { key, value } of [...stores.snapshots.getRange({})]) {
    const [ns, snapshotter, name] = key as string[];
    if (live(nodeId(snapshotNode(ns!, snapshotter!, name!)))) continue;
    dropSnapshot(stores, ns!, snapshotter!, name!, value);
    stats.snapshots++;
  }
  for (const { key } of [...stores.ingests.getRange({})]) {
    const [ns, ref] = key as string[];
    if (live(nodeId(ingestNode(ns!, ref!)))) continue;
    stores.ingests.removeSync(key);
    stats.ingests++;
  }
  for (const { key } of [...stores.content.getRange({})]) {
    const [ns, digest] = key as string[];
    if (live(nodeId(contentNode(ns!, digest!)))) continue;
    dropContent(stores, ns!, digest!);
    stats.content++;
  }
  for (const { key, value } of [...stores.retired.getRange({})]) {
    if (value.retiredAt + options.retiredGraceMs < options.now) stores.retired.removeSync(key);
  }
  expireReservations(stores, options.now, options.reservationTtlMs);
  return stats;
}
