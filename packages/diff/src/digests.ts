import { createHash, type Hash } from 'node:crypto';
import { InvalidArgumentError } from '@boxd/api';

const ALGORITHMS = new Set(['sha256', 'sha384', 'sha512']);

/** A running digest in OCI form (`sha256:<hex>`) with a byte count. */
export class Digester {
  private readonly hash: Hash;
  size = 0n;

  constructor(readonly algorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }

  update = (chunk: Buffer): void => {
    this.hash.update(chunk);
    this.size += BigInt(chunk.length);
  };

  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** Parses `<algorithm>:<hex>`, rejecting what no content store would hold. */
export function parseDigest(digest: string): { algorithm: string; hex: string } {
  const match = /^([a-z0-9]+):([a-f0-9]+)$/.exec(digest);
  if (!match || !ALGORITHMS.has(match[1]!)) throw new InvalidArgumentError(`invalid digest "${digest}"`);
  return { algorithm: match[1]!, hex: match[2]! };
}
