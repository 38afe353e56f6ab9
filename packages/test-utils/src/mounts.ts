import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { run } from './exec.js';

/** Unescapes the octal escapes (\040 for space, ...) mountinfo uses in paths. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below dir, deepest first (the order they must be unmounted in). */
export async function mountsBelow(dir: string): Promise<string[]> {
  const root = resolve(dir);
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .filter(Boolean)
    .map((line) => unescapeMountPath(line.split(' ')[4]!))
    .filter((p) => p === root || p.startsWith(root + '/'));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Lazily unmounts everything mounted at or below dir; a mount that is already gone is fine. */
export async function unmountBelow(dir: string): Promise<void> {
  for (const point of await mountsBelow(dir)) {
    await run('umount', ['-l', point]);
  }
}
