import { InvalidArgumentError } from '@boxd/api';

// lmdb's default key size limit; upstream's bolt allows more, but no real
// image name, ref or snapshot key comes near it.
const MAX_KEY_BYTES = 1900;

/** Reject names too long to be an lmdb key, with a clear error instead of a crash. */
export function checkKey(parts: readonly string[]): void {
  const bytes = parts.reduce((n, p) => n + Buffer.byteLength(p, 'utf8') + 2, 0);
  if (bytes > MAX_KEY_BYTES) throw new InvalidArgumentError(`name ${JSON.stringify(parts[parts.length - 1]!.slice(0, 40) + '...')} is too long (${bytes} bytes, at most ${MAX_KEY_BYTES})`);
}
