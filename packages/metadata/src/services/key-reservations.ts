/**
 * Sequence numbers handed to the core ahead of time, so that it can create a
 * snapshot in the backend while this plugin records it, instead of after: the
 * backend key `<ns>/<seq>/<key>` is known to both before either call.
 *
 * A reservation counts as a reference for GC (a backend snapshot made under it
 * may exist before its record does) until a Prepare or View records the key, or
 * until it has lasted its time to live: a core that restarted forgets the ones
 * it held, and what it made with them is collected then.
 */
import { FailedPreconditionError, InvalidArgumentError, goQuote } from '@boxd/api';
import { nextSequence, type Stores } from '../store/db.js';

/** Most sequence numbers one call may reserve. */
export const MAX_RESERVE = 64;

const sequenceName = (snapshotter: string) => `snapshots/${snapshotter}`;

const backendKeyOf = (ns: string, seq: number | string, key: string) => `${ns}/${seq}/${key}`;

/** The sequence number in a backend key (a namespace holds no '/'), if it has one. */
function sequenceOf(backendKey: string): string | undefined {
  const seq = backendKey.split('/', 3)[1];
  return seq !== undefined && /^[1-9][0-9]*$/.test(seq) ? seq : undefined;
}

/** A new backend key for `key`, from the snapshotter's sequence. Call inside a write transaction. */
export function newBackendKey(stores: Stores, ns: string, snapshotter: string, key: string): string {
  return backendKeyOf(ns, nextSequence(stores, sequenceName(snapshotter)), key);
}

/** Reserves `count` sequence numbers of the snapshotter. Call inside a write transaction. */
export function reserveSequences(stores: Stores, snapshotter: string, count: number, now: number): number[] {
  if (count > MAX_RESERVE) throw new InvalidArgumentError(`reserve ${count}: at most ${MAX_RESERVE} sequence numbers per call`);
  const reserved: number[] = [];
  for (let i = 0; i < count; i++) {
    const seq = nextSequence(stores, sequenceName(snapshotter));
    stores.reservedKeys.putSync([snapshotter, String(seq)], now);
    reserved.push(seq);
  }
  return reserved;
}

/**
 * Uses up the reservation `backendKey` was made with, which must be
 * `<ns>/<seq>/<key>` for this namespace and key. Call inside a write transaction.
 */
export function claimReservedKey(stores: Stores, ns: string, snapshotter: string, key: string, backendKey: string): void {
  const seq = sequenceOf(backendKey);
  if (seq === undefined || backendKey !== backendKeyOf(ns, seq, key)) throw new InvalidArgumentError(`backend key ${goQuote(backendKey)} is not ${goQuote(`${ns}/<seq>/${key}`)}`);
  if (stores.reservedKeys.get([snapshotter, seq]) === undefined) {
    throw new FailedPreconditionError(`sequence number ${seq} of snapshotter ${snapshotter} is not reserved (used, expired or never handed out)`);
  }
  stores.reservedKeys.removeSync([snapshotter, seq]);
}

/** Whether a backend key was made with a reservation still held. */
export function underReservation(stores: Stores, snapshotter: string, backendKey: string): boolean {
  const seq = sequenceOf(backendKey);
  return seq !== undefined && stores.reservedKeys.get([snapshotter, seq]) !== undefined;
}

/** Drops reservations older than `ttlMs`. Call inside a write transaction. */
export function expireReservations(stores: Stores, now: number, ttlMs: number): void {
  for (const { key, value } of [...stores.reservedKeys.getRange({})]) {
    if (value + ttlMs <= now) stores.reservedKeys.removeSync(key);
  }
}
