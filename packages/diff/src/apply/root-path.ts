/**
 * Paths of layer entries, resolved inside the target root.
 *
 * Entry names are cleaned lexically; a name that climbs above the root is
 * rejected, a leading `/` is dropped (as containerd does). Directory
 * components that are symlinks are followed only while they stay inside the
 * root: a symlink whose target is absolute or climbs above the root is never
 * followed, so a layer cannot write through it to the host.
 */
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '@boxd/api';

const MAX_SYMLINK_HOPS = 40;

/** The components of an entry name inside the root; [] is the root itself. */
export function cleanEntryName(name: string): string[] {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new InvalidArgumentError(`path "${name}" escapes the layer root`);
      out.pop();
    } else {
      out.push(part);
    }
  }
  return out;
}

export interface ResolvedDir {
  /** Existing directories, as real components below the root (no symlinks). */
  existing: string[];
  /** Components that do not exist yet, below `existing`. */
  missing: string[];
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Resolves the directory `components` inside `root` the way the container
 * would see it, following symlinks that stay inside the root.
 * `entry` names the layer entry in errors.
 */
export function resolveDir(root: string, components: string[], entry: string): ResolvedDir {
  const existing: string[] = [];
  const queue = [...components];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (existing.length === 0) throw new InvalidArgumentError(`path "${entry}": a symlink on the way leads outside the layer root`);
      existing.pop();
      continue;
    }
    const path = join(root, ...existing, part);
    const stat = lstatOrUndefined(path);
    if (!stat) {
      const missing = [part, ...queue.filter((p) => p !== '' && p !== '.')];
      // `..` below a directory that does not exist cannot be resolved safely.
      if (missing.includes('..')) throw new InvalidArgumentError(`path "${entry}": a symlink on the way climbs out of a missing directory`);
      return { existing, missing };
    }
    if (stat.isDirectory()) {
      existing.push(part);
    } else if (stat.isSymbolicLink()) {
      const target = readlinkSync(path);
      const where = [...existing, part].join('/');
      if (target.startsWith('/')) {
        throw new InvalidArgumentError(`path "${entry}": symlink "${where}" -> "${target}" is absolute and is not followed for writes`);
      }
      if (++hops > MAX_SYMLINK_HOPS) throw new InvalidArgumentError(`path "${entry}": too many levels of symbolic links at "${where}"`);
      queue.unshift(...target.split('/'));
    } else {
      throw new FailedPreconditionError(`path "${entry}": "${[...existing, part].join('/')}" is not a directory`);
    }
  }
  return { existing, missing: [] };
}
