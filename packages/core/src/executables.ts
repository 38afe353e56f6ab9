/** Finding the binaries the core runs: plugins and shims. */
import { existsSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '@boxd/api';

/** Where each name was found last: a task start looks its shim up again, one stat instead of a PATH walk. */
const found = new Map<string, string>();

/**
 * An absolute path as given (it must exist); otherwise PATH, then every
 * node_modules/.bin above the core (where npm links the plugin and shim
 * packages), then the directory of the node binary.
 */
export function findExecutable(name: string, what: string): string {
  if (isAbsolute(name)) {
    if (!existsSync(name)) throw new NotFoundError(`${what} ${name}`);
    return name;
  }
  const known = found.get(name);
  if (known && existsSync(known)) return known;
  const path = searchExecutable(name);
  if (!path) throw new NotFoundError(`${what} not installed "${name}" (looked in PATH and node_modules/.bin)`);
  found.set(name, path);
  return path;
}

function searchExecutable(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) dirs.push(join(dir, 'node_modules', '.bin'));
  dirs.push(dirname(process.execPath));
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}
