/**
 * What the core needs to create a snapshot in its backend while the metadata
 * plugin records it, so that a Prepare or View costs the longer of the two
 * calls rather than their sum (some 1-1.5 ms of every `ctr run`):
 *
 * - sequence numbers the index reserved for backend keys (`<ns>/<seq>/<key>`),
 *   asked for along with a create whenever few are left;
 * - the backend key of each parent, as the index last answered it.
 *
 * Both are only a guess the index's answer is checked against: a parent
 * removed and made again under the same name has a new backend key, and a
 * reservation may have expired or gone with a restored metadata store.
 */
import { snapshotBackendLabels, type boxdMetadata } from '@boxd/api';

/** Fewer fresh reservations than this, and the next create asks for more. */
const LOW_WATER = 4;
/** How many to ask for at once. */
const REFILL = 16;
/** Parents remembered, oldest out. */
const PARENT_LIMIT = 1024;

export interface BackendPlan {
  key: string;
  parent: string;
  labels: Record<string, string>;
}

interface Reservation {
  seq: string;
  /** performance.now() past which it is not used: half its time to live, so GC never races us. */
  until: number;
}

export class BackendKeyPlanner {
  private readonly reservations = new Map<string, Reservation[]>();
  /** Reservations asked for and not yet answered, per snapshotter. */
  private readonly asked = new Map<string, number>();
  private readonly parents = new Map<string, string>();

  /**
   * The backend key, parent and labels to create `key` with before the index
   * has answered, or undefined when the parent's backend key is not known or
   * no reservation is left. Uses up a reservation.
   */
  plan(ns: string, snapshotter: string, key: string, parent: string, labels: Record<string, string>): BackendPlan | undefined {
    // Without a namespace the index refuses the create: nothing to make ahead of it.
    if (!ns) return undefined;
    const parentKey = parent ? this.parents.get(parentId(ns, snapshotter, parent)) : '';
    if (parentKey === undefined) return undefined;
    const seq = this.takeReservation(snapshotter);
    if (seq === undefined) return undefined;
    return { key: `${ns}/${seq}/${key}`, parent: parentKey, labels: snapshotBackendLabels(labels) };
  }

  /** How many sequence numbers to reserve with the next create in `snapshotter`; counted as asked. */
  reserveCount(snapshotter: string): number {
    const have = this.fresh(snapshotter).length + (this.asked.get(snapshotter) ?? 0);
    if (have >= LOW_WATER) return 0;
    this.asked.set(snapshotter, (this.asked.get(snapshotter) ?? 0) + REFILL);
    return REFILL;
  }

  /** The index answered a create that asked for `reserved` sequence numbers (0: none); undefined: it failed. */
  learn(ns: string, snapshotter: string, parent: string, reserved: number, answer: boxdMetadata.BackendSnapshot | undefined): void {
    if (reserved) this.asked.set(snapshotter, Math.max(0, (this.asked.get(snapshotter) ?? 0) - reserved));
    if (!answer) return;
    if (parent) this.rememberParent(parentId(ns, snapshotter, parent), answer.parent);
    if (answer.reserved.length === 0) return;
    const until = performance.now() + answer.reservationTtlMs / 2;
    const pool = this.fresh(snapshotter);
    for (const seq of answer.reserved) pool.push({ seq: seq.toString(), until });
  }

  /** The plan's parent was not the index's: do not guess it again. */
  forgetParent(ns: string, snapshotter: string, parent: string): void {
    this.parents.delete(parentId(ns, snapshotter, parent));
  }

  /** The index refused one of this snapshotter's reservations: the rest are as doubtful. */
  dropReservations(snapshotter: string): void {
    this.reservations.delete(snapshotter);
  }

  /** Whether the index recorded what was made from the plan. */
  static matches(plan: BackendPlan, answer: boxdMetadata.BackendSnapshot): boolean {
    if (answer.key !== plan.key || answer.parent !== plan.parent) return false;
    const ours = Object.entries(plan.labels);
    return ours.length === Object.keys(answer.labels).length && ours.every(([k, v]) => answer.labels[k] === v);
  }

  private takeReservation(snapshotter: string): string | undefined {
    return this.fresh(snapshotter).shift()?.seq;
  }

  /** The snapshotter's pool, expired reservations dropped (a new array only when some are). */
  private fresh(snapshotter: string): Reservation[] {
    const now = performance.now();
    const pool = this.reservations.get(snapshotter);
    if (pool && !pool.some((r) => r.until <= now)) return pool;
    const kept = pool?.filter((r) => r.until > now) ?? [];
    this.reservations.set(snapshotter, kept);
    return kept;
  }

  private rememberParent(id: string, backendKey: string): void {
    this.parents.delete(id);
    this.parents.set(id, backendKey);
    if (this.parents.size > PARENT_LIMIT) this.parents.delete(this.parents.keys().next().value!);
  }
}

const parentId = (ns: string, snapshotter: string, parent: string) => `${ns}\0${snapshotter}\0${parent}`;
