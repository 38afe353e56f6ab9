/**
 * Digest strings (`<algorithm>:<hex>`) and the running hash of an ingest.
 *
 * Valid algorithms are the ones containerd's digest package accepts, so a
 * sha512 digest is "not found" here rather than "invalid". Ingests are always
 * hashed with the canonical sha256, as upstream's store does: a commit whose
 * expected digest uses another algorithm fails the digest check.
 */
import { createHash, type Hash } from 'node:crypto';
import { InvalidArgumentError, type BoxdError } from '@boxd/api';

const HEX_LENGTH = new Map([
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
]);
const LOWER_HEX = /^[a-f0-9]+$/;

export const CANONICAL_ALGORITHM = 'sha256';

export interface Digest {
  readonly algorithm: string;
  readonly hex: string;
  /** The full `<algorithm>:<hex>` string. */
  readonly value: string;
}

export function parseDigest(value: string): Digest {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) throw invalidDigest(value, 'invalid checksum digest format');
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  const length = HEX_LENGTH.get(algorithm);
  if (length === undefined) throw invalidDigest(value, 'unsupported digest algorithm');
  if (hex.length !== length) throw invalidDigest(value, 'invalid checksum digest length');
  if (!LOWER_HEX.test(hex)) throw invalidDigest(value, 'invalid checksum digest format');
  return { algorithm, hex, value };
}

export function isSupportedAlgorithm(algorithm: string): boolean {
  return HEX_LENGTH.has(algorithm);
}

function invalidDigest(value: string, reason: string): BoxdError {
  return new InvalidArgumentError(`${JSON.stringify(value)}: ${reason}`);
}

/** Incremental hash that can report the digest of the bytes so far without ending. */
export class Digester {
  private hash: Hash;

  constructor(readonly algorithm: string = CANONICAL_ALGORITHM) {
    this.hash = createHash(algorithm);
  }

  update(data: Uint8Array): void {
    this.hash.update(data);
  }

  reset(): void {
    this.hash = createHash(this.algorithm);
  }

  digest(): string {
    return `${this.algorithm}:${this.hash.copy().digest('hex')}`;
  }
}
